// loupe/runtime.hpp — everything a loupe application includes.
#pragma once

#include <loupe/runtime/app_key.hpp>
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/errors.hpp>
#include <loupe/runtime/executor.hpp>
#include <loupe/runtime/flags.hpp>
#include <loupe/runtime/gather.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/metrics.hpp>
#include <loupe/runtime/request.hpp>
#include <loupe/runtime/response.hpp>
#include <loupe/runtime/router.hpp>
#include <loupe/runtime/run_app.hpp>
#include <loupe/runtime/runner.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/runtime/task.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/tls.hpp>
#include <loupe/runtime/tracking.hpp>
#include <loupe/runtime/websocket.hpp>
