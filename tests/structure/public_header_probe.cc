// Must compile: the public header of a linked module (the control for
// internal_header_probe.cc).
#include "sentinel/config/config.h"
