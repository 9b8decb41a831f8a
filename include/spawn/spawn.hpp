#pragma once

/// The Spawn C++ SDK: define actors with typed actions, run them embedded in this process or
/// behind a spawn-proxy, and invoke them. docs/sdk.md walks through it.
///
/// ```cpp
/// #include <spawn/spawn.hpp>
///
/// spawn::ActorSystem system("demo");
/// system.actor<Counter>("counter").action("add", [](spawn::Context<Counter>& ctx, const Add& in) {
///   Counter next = ctx.state();
///   next.set_value(next.value() + in.by());
///   return ctx.value().state(next).reply(next);
/// });
/// auto node = spawn::Node::embedded(system);
/// auto counter = node->client().actor("counter");
/// spawn::Result<Counter> now = counter.invoke<Counter>("add", add);
/// ```

#include "spawn/actor_id.hpp"      // IWYU pragma: export
#include "spawn/actor_system.hpp"  // IWYU pragma: export
#include "spawn/client.hpp"        // IWYU pragma: export
#include "spawn/context.hpp"       // IWYU pragma: export
#include "spawn/node.hpp"          // IWYU pragma: export
#include "spawn/payload.hpp"       // IWYU pragma: export
#include "spawn/result.hpp"        // IWYU pragma: export
#include "spawn/value.hpp"         // IWYU pragma: export
