// Boost.Asio and Boost.Beast are built once, here (BOOST_*_SEPARATE_COMPILATION), which keeps
// every other translation unit small on a two-core machine.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
