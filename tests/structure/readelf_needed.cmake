# read_needed(BIN OUT_VAR): the NEEDED lines of `readelf -d BIN` (READELF),
# as a list. Fails the script when BIN is not built, readelf fails, or it
# lists no NEEDED entry at all (nothing could then be judged).
function(read_needed bin out_var)
  if(NOT EXISTS "${bin}")
    message(FATAL_ERROR "${bin}: not built (build the tree before running the tests)")
  endif()
  execute_process(COMMAND "${READELF}" -d "${bin}" OUTPUT_VARIABLE dyn ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "readelf -d ${bin} failed (${rc}): ${err}")
  endif()
  string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*" needed "${dyn}")
  if(NOT needed)
    message(FATAL_ERROR "${bin}: readelf -d lists no NEEDED entry at all; cannot judge")
  endif()
  set(${out_var} "${needed}" PARENT_SCOPE)
endfunction()
