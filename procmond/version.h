#pragma once
namespace sentinel::procmond {
inline constexpr const char* kVersion = "0.1.0";
}
