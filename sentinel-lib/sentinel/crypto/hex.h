// Forwards to sentinel/base/hex.h, the one hex codec: kept so code that
// still spells crypto::ToHex / crypto::FromHex builds. New code includes
// sentinel/base/hex.h.
#pragma once

#include "sentinel/base/hex.h"

namespace sentinel::crypto {

using sentinel::FromHex;
using sentinel::ToHex;

}  // namespace sentinel::crypto
