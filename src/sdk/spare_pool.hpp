#pragma once

#include <array>
#include <cstddef>

namespace spawn::sdk {

/// Up to `N` spare objects of one thread (a `thread_local` of its own), kept with their buffers
/// so that reusing one allocates nothing. Whatever comes back once the pool is full, or after
/// the thread's pool was destroyed (thread exit), is deleted.
template <class T, std::size_t N>
class SparePool {
public:
  SparePool() = default;
  SparePool(const SparePool&) = delete;
  SparePool& operator=(const SparePool&) = delete;

  ~SparePool() {
    for (std::size_t i = 0; i < count_; ++i) {
      delete spare_[i];
    }
    count_ = 0;
    closed_ = true;
  }

  /// Returns a spare object as it was given back, or null when there is none.
  T* take() { return count_ == 0 ? nullptr : spare_[--count_]; }

  /// Keeps `object` (may be null) for take(), or deletes it when the pool is full or gone.
  void give(T* object) noexcept {
    if (object == nullptr) {
      return;
    }
    if (count_ == N || closed_) {
      delete object;
      return;
    }
    spare_[count_++] = object;
  }

private:
  std::array<T*, N> spare_{};
  std::size_t count_ = 0;
  bool closed_ = false;
};

/// The largest buffer a spare object may keep (its payload's): a larger one would stay
/// allocated for as long as its thread lives, so such an object is deleted instead.
inline constexpr std::size_t kMaxSpareBytes = 64 * 1024;

}  // namespace spawn::sdk
