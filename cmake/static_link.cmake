# Static linking of gRPC, protobuf, abseil, OpenSSL (and what they need: re2, c-ares, upb,
# zlib, ...) into one executable, from the .a files Debian ships next to the shared libraries
# (libgrpc-dev, libprotobuf-dev, libabsl-dev, libssl-dev, libre2-dev, libc-ares-dev, zlib1g-dev).
# glibc stays dynamic. Measured on the client: loading ~55 shared libraries (symbol lookup,
# relocations, mmap + page faults) was most of a `clrdiag ps`.
#
#   CLRDIAG_STATIC_ARCHIVES_FOUND   TRUE when every archive `pkg-config --static --libs grpc++
#                                   protobuf` names exists (a sensible default for the options)
#   CLRDIAG_STATIC_ARCHIVES         those archives, full paths
#   CLRDIAG_STATIC_MISSING          the ones that are missing, if any
#
#   clrdiag_link_static(<exe> LIBS <in-tree static libraries...> [STATIC_RUNTIME])
#     Links <exe> against the in-tree libraries (and, transitively, the in-tree libraries they
#     use) *without* the imported shared gRPC/protobuf/absl/OpenSSL targets they carry, and
#     against CLRDIAG_STATIC_ARCHIVES instead, with --gc-sections. Other imported targets (e.g.
#     spdlog) stay as they are. STATIC_RUNTIME adds -static-libstdc++ -static-libgcc; only use it
#     when no remaining shared C++ library (spdlog, fmt, yaml-cpp) is linked, or the process
#     would carry two copies of libstdc++.
#     Use it instead of target_link_libraries(<exe> PRIVATE <libs>) for these libraries.

find_package(PkgConfig QUIET)
include(CheckLinkerFlag)
# DT_RELR (binutils >= 2.38, glibc >= 2.36): relative relocations in a few KiB instead of
# ~800 KiB of .rela.dyn that is read, and stays resident, at every start (measured: -1.6 MiB
# daemon RSS).
check_linker_flag(CXX "-Wl,-z,pack-relative-relocs" CLRDIAG_LINKER_HAS_RELR)
set(CLRDIAG_STATIC_ARCHIVES_FOUND FALSE)
set(CLRDIAG_STATIC_ARCHIVES "")
set(CLRDIAG_STATIC_MISSING "")
# What stays a (system) shared library even in a static link: glibc's parts and libatomic.
set(_clrdiag_static_system_libs pthread dl rt m c atomic)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(_CLRDIAG_PC QUIET grpc++ protobuf)
  if(_CLRDIAG_PC_FOUND)
    set(_names ${_CLRDIAG_PC_STATIC_LIBRARIES})
    # Keep the last occurrence of each name: the order a one-pass static link would need.
    list(REVERSE _names)
    list(REMOVE_DUPLICATES _names)
    list(REVERSE _names)
    foreach(_name IN LISTS _names)
      if(_name IN_LIST _clrdiag_static_system_libs)
        continue()
      endif()
      string(MAKE_C_IDENTIFIER "CLRDIAG_STATIC_LIB_${_name}" _var)
      find_library(${_var} NAMES lib${_name}.a HINTS ${_CLRDIAG_PC_STATIC_LIBRARY_DIRS})
      mark_as_advanced(${_var})
      if(${_var})
        list(APPEND CLRDIAG_STATIC_ARCHIVES ${${_var}})
      else()
        list(APPEND CLRDIAG_STATIC_MISSING lib${_name}.a)
      endif()
    endforeach()
    if(CLRDIAG_STATIC_ARCHIVES AND NOT CLRDIAG_STATIC_MISSING)
      set(CLRDIAG_STATIC_ARCHIVES_FOUND TRUE)
    endif()
  else()
    set(CLRDIAG_STATIC_MISSING "pkg-config modules grpc++ protobuf")
  endif()
else()
  set(CLRDIAG_STATIC_MISSING "pkg-config")
endif()

# Imported targets whose code CLRDIAG_STATIC_ARCHIVES provide.
function(_clrdiag_static_covered dep out)
  if(dep MATCHES "^(absl|gRPC|protobuf|OpenSSL|ZLIB|c-ares|re2)::")
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()

# Walks INTERFACE_LINK_LIBRARIES from the in-tree libraries: in-tree static libraries into
# <libs_out> (dependents before their dependencies), other link items into <other_out>.
function(_clrdiag_static_walk lib libs_out other_out)
  set(libs ${${libs_out}})
  set(other ${${other_out}})
  if(lib IN_LIST libs)
    return()
  endif()
  list(APPEND libs ${lib})
  get_target_property(deps ${lib} INTERFACE_LINK_LIBRARIES)
  if(deps)
    foreach(dep IN LISTS deps)
      string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" dep "${dep}")
      if(dep MATCHES "^\\$<")
        message(FATAL_ERROR "clrdiag_link_static: cannot handle the link item ${dep} of ${lib}")
      endif()
      if(TARGET ${dep})
        get_target_property(imported ${dep} IMPORTED)
        get_target_property(type ${dep} TYPE)
        if(NOT imported AND type STREQUAL "STATIC_LIBRARY")
          _clrdiag_static_walk(${dep} libs other)
          continue()
        endif()
        _clrdiag_static_covered(${dep} covered)
        if(covered)
          continue()
        endif()
        if(NOT imported AND NOT type STREQUAL "INTERFACE_LIBRARY")
          message(FATAL_ERROR "clrdiag_link_static: ${lib} uses ${dep} (${type}), not supported")
        endif()
      endif()
      if(NOT dep IN_LIST other)
        list(APPEND other ${dep})
      endif()
    endforeach()
  endif()
  set(${libs_out} ${libs} PARENT_SCOPE)
  set(${other_out} ${other} PARENT_SCOPE)
endfunction()

function(clrdiag_link_static exe)
  if(NOT CLRDIAG_STATIC_ARCHIVES_FOUND)
    message(FATAL_ERROR "clrdiag_link_static(${exe}): static archives missing: "
                        "${CLRDIAG_STATIC_MISSING}")
  endif()
  # The libraries' link interfaces are read once the whole project is configured: a
  # target_link_libraries() further down (or in another directory) still counts.
  # (A deferred call evaluates variable references when it runs: pass the values in.)
  set(args ${exe} ${ARGN})
  list(JOIN args "]] [[" args)
  cmake_language(EVAL CODE
    "cmake_language(DEFER DIRECTORY [[${CMAKE_SOURCE_DIR}]] CALL _clrdiag_link_static_now [[${args}]])")
endfunction()

function(_clrdiag_link_static_now exe)
  cmake_parse_arguments(S "STATIC_RUNTIME" "" "LIBS" ${ARGN})
  set(libs "")
  set(other "")
  foreach(lib IN LISTS S_LIBS)
    _clrdiag_static_walk(${lib} libs other)
  endforeach()
  set(files "")
  foreach(lib IN LISTS libs)
    # Compile-side usage requirements of the library (evaluated transitively by CMake), without
    # its link interface.
    foreach(prop INCLUDE_DIRECTORIES COMPILE_DEFINITIONS COMPILE_OPTIONS)
      set_property(TARGET ${exe} APPEND PROPERTY ${prop}
                   "$<TARGET_PROPERTY:${lib},INTERFACE_${prop}>")
    endforeach()
    set_property(TARGET ${exe} APPEND PROPERTY INCLUDE_DIRECTORIES
                 "$<TARGET_PROPERTY:${lib},INTERFACE_SYSTEM_INCLUDE_DIRECTORIES>")
    add_dependencies(${exe} ${lib})
    list(APPEND files "$<TARGET_FILE:${lib}>")
  endforeach()
  set_property(TARGET ${exe} APPEND PROPERTY LINK_DEPENDS ${files})
  target_link_libraries(${exe} PRIVATE
    -Wl,--start-group ${files} ${CLRDIAG_STATIC_ARCHIVES} -Wl,--end-group
    ${other} Threads::Threads ${CMAKE_DL_LIBS}
    -Wl,--push-state,--as-needed -lrt -latomic -Wl,--pop-state)
  target_compile_options(${exe} PRIVATE -ffunction-sections -fdata-sections)
  target_link_options(${exe} PRIVATE -Wl,--gc-sections)
  if(CLRDIAG_LINKER_HAS_RELR)
    target_link_options(${exe} PRIVATE -Wl,-z,pack-relative-relocs)
  endif()
  if(S_STATIC_RUNTIME)
    target_link_options(${exe} PRIVATE -static-libstdc++ -static-libgcc)
  endif()
endfunction()
