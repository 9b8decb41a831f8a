#pragma once

// The generated wire messages under short names. Include this instead of the .pb.h files.

#include "eigr/functions/protocol/actors/actor.pb.h"
#include "eigr/functions/protocol/protocol.pb.h"
#include "eigr/functions/protocol/state.pb.h"

namespace spawn::protocol {

namespace pb = ::eigr::functions::protocol;
namespace pba = ::eigr::functions::protocol::actors;

}  // namespace spawn::protocol
