# Warnings for our own code (not for generated protobuf sources).
add_library(spawn_warnings INTERFACE)
target_compile_options(spawn_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  # GCC 12 misreports Asio's coroutine frame allocator (a known false positive).
  -Wno-mismatched-new-delete
  # GCC 12 reports std::variant members inside coroutine frames as maybe-uninitialized.
  -Wno-maybe-uninitialized)
if(SPAWN_WERROR)
  target_compile_options(spawn_warnings INTERFACE -Werror)
endif()

if(SPAWN_SANITIZE)
  string(REPLACE ";" "," _spawn_san "${SPAWN_SANITIZE}")
  add_compile_options(-fsanitize=${_spawn_san} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${_spawn_san})
endif()

# spawn_add_library(NAME <layer> SOURCES ... DEPS ...)
#   Builds spawn_<layer> with alias spawn::<layer>, headers rooted at src/ and include/.
function(spawn_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(spawn_${name} STATIC ${ARG_SOURCES})
  add_library(spawn::${name} ALIAS spawn_${name})
  target_include_directories(spawn_${name} PUBLIC
    ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(spawn_${name} PUBLIC ${ARG_DEPS} PRIVATE spawn_warnings ${ARG_PRIVATE_DEPS})
endfunction()

# spawn_add_test(NAME <target> SOURCES ... DEPS ... [LABELS ...])
#   A GoogleTest executable whose tests are discovered into ctest with the given labels (unit).
function(spawn_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest_main GTest::gmock spawn_warnings)
  # Shared test code is included as "support/...".
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()
