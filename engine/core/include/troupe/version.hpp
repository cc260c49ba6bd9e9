#pragma once

/// The engine's version; a module built with other headers is refused.
#define TROUPE_VERSION_STRING "0.1.0"
