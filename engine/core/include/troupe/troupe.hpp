#pragma once
// The one header a module author includes.

#include "troupe/actor.hpp"
#include "troupe/address.hpp"
#include "troupe/convention.hpp"
#include "troupe/convention_pool.hpp"
#include "troupe/convention_supervisor.hpp"
#include "troupe/message.hpp"
#include "troupe/module.hpp"
#include "troupe/requirements.hpp"
#include "troupe/result.hpp"
#include "troupe/system.hpp"
#include "troupe/task.hpp"
#include "troupe/wire.hpp"
#include "troupe/worker_pool.hpp"
