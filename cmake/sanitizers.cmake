# CLRDIAG_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer) everywhere,
# and the runtime options of tests/sanitizers/options.cc compiled into every executable.
# `make sanitize` builds such a tree (build-asan) and runs the unit and integration tests in it;
# `make test` does that after the main suite.
if(CLRDIAG_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# Adds options.cc to every executable defined in the project (called at the end of the
# top-level CMakeLists.txt, once every directory is known).
function(clrdiag_sanitizer_options_everywhere)
  if(NOT CLRDIAG_SANITIZE)
    return()
  endif()
  set(options ${CMAKE_SOURCE_DIR}/tests/sanitizers/options.cc)
  set(dirs ${CMAKE_SOURCE_DIR})
  while(dirs)
    list(POP_FRONT dirs dir)
    get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
    list(APPEND dirs ${subdirs})
    get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
    foreach(t IN LISTS targets)
      get_target_property(type ${t} TYPE)
      if(type STREQUAL "EXECUTABLE")
        target_sources(${t} PRIVATE ${options})
        set_source_files_properties(${options} TARGET_DIRECTORY ${t} PROPERTIES
          COMPILE_DEFINITIONS "CLRDIAG_LSAN_SUPPRESSIONS=\"${CMAKE_SOURCE_DIR}/tests/sanitizers/lsan.supp\"")
      endif()
    endforeach()
  endwhile()
endfunction()
