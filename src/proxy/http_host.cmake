#spawn::proxy_http_host — the sidecar - mode runtime::Host(HTTP client to the user function).
#Included from src / proxy / CMakeLists.txt.
spawn_add_library(proxy_http_host SOURCES ${CMAKE_CURRENT_LIST_DIR}
                  / http_host.cpp DEPS spawn::protocol spawn::common)
