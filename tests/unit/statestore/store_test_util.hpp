#pragma once

// Helpers shared by the statestore tests: a temporary directory and a way to run a coroutine.

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <boost/asio/io_context.hpp>

#include "common/asio.hpp"

namespace spawn::statestore::testing {

/// A fresh directory under the system temp dir, removed with everything in it at destruction.
class TempDir {
public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "spawn-statestore-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      std::abort();
    }
    path_ = pattern;
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
};

/// Runs `task` on a fresh io_context until it finishes and returns its value. An exception
/// escaping the task is rethrown, so GoogleTest reports it.
template <class T>
T run_task(Task<T> task) {
  asio::io_context io;
  std::optional<T> result;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    result = std::move(value);
  });
  io.run();
  if (error) {
    std::rethrow_exception(error);
  }
  return std::move(*result);
}

/// Returns the bytes of `file`, or "" when it does not exist.
inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Returns the bytes of a SQLite database and its -wal and -shm files, concatenated.
inline std::string read_database_files(const std::filesystem::path& file) {
  return read_file(file) + read_file(file.string() + "-wal") + read_file(file.string() + "-shm");
}

}  // namespace spawn::statestore::testing
