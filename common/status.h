// Errors as values: Error names the failing call and errno; Result<T> holds a T or an Error.
// No exceptions cross the KVM boundary (docs/architecture.md). Thread-safety: plain values.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace vmfork {

/// A failure: `what` names the failing call and its context ("KVM_CREATE_VM", "open /x"),
/// `sys_errno` is the errno it returned (0 when the failure is not a system call's).
struct Error {
  std::string what;
  int sys_errno = 0;

  /// "what: strerror(errno)" or just "what".
  std::string message() const {
    return sys_errno ? what + ": " + std::strerror(sys_errno) : what;
  }
};

/// Error from the current errno, for a system call that just failed.
inline Error errno_error(std::string what) { return Error{std::move(what), errno}; }

/// Error that is not a system call's (bad input, bad guest, format violation).
inline Error plain_error(std::string what) { return Error{std::move(what), 0}; }

/// A T or an Error. [[nodiscard]] so that an ignored failure is a compile error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}      // NOLINT: implicit by design
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

/// Success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : err_(std::move(error)), failed_(true) {}  // NOLINT: implicit by design
  static Status Ok() { return {}; }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool failed_ = false;
};

}  // namespace vmfork

/// Propagates a failed Status or Result out of the calling function.
#define VF_TRY(expr)                                  \
  do {                                                \
    auto&& vf_try_r_ = (expr);                        \
    if (!vf_try_r_.ok()) return vf_try_r_.error();    \
  } while (0)

/// Evaluates a Result<T> expression; on success moves its value into `lhs`, else returns the error.
#define VF_ASSIGN(lhs, expr)                          \
  auto VF_CONCAT_(vf_r_, __LINE__) = (expr);          \
  if (!VF_CONCAT_(vf_r_, __LINE__).ok()) return VF_CONCAT_(vf_r_, __LINE__).error(); \
  lhs = std::move(VF_CONCAT_(vf_r_, __LINE__)).value()
#define VF_CONCAT_(a, b) VF_CONCAT2_(a, b)
#define VF_CONCAT2_(a, b) a##b
