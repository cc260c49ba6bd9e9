#pragma once
// The core API: the one header a module author includes. Links to other
// engines (troupe/remote.hpp) and the convention (troupe/convention.hpp,
// troupe/convention_pool.hpp, troupe/convention_supervisor.hpp,
// troupe/requirements.hpp) have headers of their own.

#include "troupe/actor.hpp"
#include "troupe/address.hpp"
#include "troupe/extension.hpp"
#include "troupe/message.hpp"
#include "troupe/module.hpp"
#include "troupe/result.hpp"
#include "troupe/system.hpp"
#include "troupe/task.hpp"
#include "troupe/wire.hpp"
#include "troupe/worker_pool.hpp"
