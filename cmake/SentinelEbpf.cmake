# eBPF real-time source of procmond (docs/realtime.md).
#
# SENTINEL_EBPF=AUTO (default) builds it when clang, bpftool, libbpf and the
# build machine's kernel BTF (/sys/kernel/btf/vmlinux) are all there, and
# says why not otherwise; ON makes a missing piece a configure error; OFF
# never builds it. At build time: vmlinux.h is dumped from the BTF, the BPF
# object compiled with clang -target bpf, and the skeleton generated with
# bpftool gen skeleton, all into the build directory.
#
# Defines sentinel_ebpf_enable(TARGET): adds the generated skeleton's
# directory, libbpf and SENTINEL_HAVE_EBPF to TARGET when eBPF is built.
set(SENTINEL_EBPF "AUTO" CACHE STRING "Build procmond's eBPF real-time source: AUTO, ON or OFF")
set_property(CACHE SENTINEL_EBPF PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${SENTINEL_EBPF}" _sentinel_ebpf)
set(SENTINEL_EBPF_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "Kernel BTF that vmlinux.h is generated from")

set(SENTINEL_HAVE_EBPF OFF)
set(_why "")
if(_sentinel_ebpf STREQUAL "OFF")
  set(_why "SENTINEL_EBPF=OFF")
else()
  find_program(SENTINEL_CLANG NAMES clang clang-16 clang-15 clang-14)
  find_program(SENTINEL_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin)
  pkg_check_modules(LIBBPF IMPORTED_TARGET libbpf)
  if(NOT SENTINEL_CLANG)
    set(_why "clang not found")
  elseif(NOT SENTINEL_BPFTOOL)
    set(_why "bpftool not found")
  elseif(NOT LIBBPF_FOUND)
    set(_why "libbpf (pkg-config libbpf) not found")
  elseif(NOT EXISTS "${SENTINEL_EBPF_VMLINUX_BTF}")
    set(_why "no kernel BTF at ${SENTINEL_EBPF_VMLINUX_BTF}")
  else()
    set(SENTINEL_HAVE_EBPF ON)
  endif()
endif()

if(SENTINEL_HAVE_EBPF)
  message(STATUS "procmond eBPF real-time source: ON (clang ${SENTINEL_CLANG}, bpftool ${SENTINEL_BPFTOOL}, "
                 "libbpf ${LIBBPF_VERSION}, BTF ${SENTINEL_EBPF_VMLINUX_BTF})")
elseif(_sentinel_ebpf STREQUAL "ON")
  message(FATAL_ERROR "SENTINEL_EBPF=ON but the eBPF source cannot be built: ${_why}")
else()
  message(STATUS "procmond eBPF real-time source: OFF (${_why}); procmond will use the netlink proc connector")
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(_bpf_arch x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(_bpf_arch arm64)
else()
  set(_bpf_arch ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(sentinel_ebpf_enable target)
  if(NOT SENTINEL_HAVE_EBPF)
    return()
  endif()
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  add_custom_command(
    OUTPUT ${_out}/vmlinux.h
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_out}
    COMMAND ${SENTINEL_BPFTOOL} btf dump file ${SENTINEL_EBPF_VMLINUX_BTF} format c > ${_out}/vmlinux.h
    COMMENT "Generating vmlinux.h from ${SENTINEL_EBPF_VMLINUX_BTF}"
    VERBATIM)
  # exec_events: the real-time source; task_iter: the per-scan sampler.
  set(_skeletons "")
  foreach(_prog exec_events task_iter)
    set(_src ${PROJECT_SOURCE_DIR}/procmond/bpf/${_prog}.bpf.c)
    add_custom_command(
      OUTPUT ${_out}/${_prog}.bpf.o
      COMMAND ${SENTINEL_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${_bpf_arch} -Wall -Werror
              -I${_out} -I${PROJECT_SOURCE_DIR}/procmond/bpf -c ${_src} -o ${_out}/${_prog}.bpf.o
      DEPENDS ${_src} ${PROJECT_SOURCE_DIR}/procmond/bpf/${_prog}.h ${_out}/vmlinux.h
      COMMENT "Compiling the BPF program ${_prog}.bpf.c"
      VERBATIM)
    add_custom_command(
      OUTPUT ${_out}/${_prog}.skel.h
      COMMAND ${SENTINEL_BPFTOOL} gen skeleton ${_out}/${_prog}.bpf.o name ${_prog} > ${_out}/${_prog}.skel.h
      DEPENDS ${_out}/${_prog}.bpf.o
      COMMENT "Generating the BPF skeleton ${_prog}.skel.h"
      VERBATIM)
    list(APPEND _skeletons ${_out}/${_prog}.skel.h)
  endforeach()
  add_custom_target(${target}_bpf_skeleton DEPENDS ${_skeletons})
  add_dependencies(${target} ${target}_bpf_skeleton)
  target_include_directories(${target} PRIVATE ${_out})
  target_compile_definitions(${target} PRIVATE SENTINEL_HAVE_EBPF=1)
  target_link_libraries(${target} PUBLIC PkgConfig::LIBBPF)
endfunction()
