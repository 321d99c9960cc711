// One connection to a Redis server (hiredis, RESP2), for the Redis Streams worker and its
// client: a parsed URL, connect and command timeouts on every call, and replies as owned
// values. A failed connection is dropped and reopened by the next call, so callers retry a
// command without caring whether the link broke. Thread-safety: one RedisConn per thread
// (a hiredis context is not thread-safe); RedisReply values are plain data.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct redisContext;

namespace vmfork::pool {

/// Where the server is: `redis://[[user]:password@]host[:port][/db]` (port 6379, db 0 by
/// default; an IPv6 host in brackets) or `unix:///path/to/redis.sock[?db=N]`, the forms
/// redis-cli -u and redis-py's from_url take (IANA "redis" URI scheme).
struct RedisUrl {
  std::string host;         // empty for a Unix socket
  int port = 6379;
  std::string socket_path;  // for unix://
  std::string user, password;
  int db = 0;

  /// Errors: an unknown scheme, a bad port or db, an empty host or path.
  static Result<RedisUrl> parse(std::string_view url);
  /// host:port or the socket path, without credentials (for logs).
  std::string where() const;
};

/// A reply, copied out of hiredis's redisReply so it outlives the connection.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;          // kString, kStatus, kError
  int64_t integer = 0;      // kInteger
  std::vector<RedisReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
  bool is_array() const { return type == Type::kArray; }
  /// The string of a kString or kStatus reply, else empty.
  const std::string& text() const;
};

/// Connect and per-call timeouts. Every wait on the server is bounded by one of them, so a
/// dead or hung Redis never wedges the caller.
struct RedisTimeouts {
  std::chrono::milliseconds connect{2000};
  /// A command's reply; a blocking command (XREADGROUP BLOCK t) must use t well below it.
  std::chrono::milliseconds command{5000};
};

class RedisConn {
 public:
  RedisConn(RedisUrl url, RedisTimeouts timeouts);
  ~RedisConn();
  RedisConn(const RedisConn&) = delete;
  RedisConn& operator=(const RedisConn&) = delete;

  /// Opens the connection if it is not open (connect, AUTH, SELECT). Errors: "redis
  /// HOST:PORT: connect: Connection refused" and the like; the connection stays closed.
  Status connect();
  /// Runs one command (argv as binary-safe strings). An error reply (-ERR ...) is a reply,
  /// not a failure. Errors: the connection failed or timed out (it is then closed and the next
  /// call reconnects).
  Result<RedisReply> command(const std::vector<std::string>& argv);
  /// Sends every command in one write and reads their replies in order (a pipeline: one
  /// round trip). Errors: as command(); a failure loses every reply of the batch.
  Result<std::vector<RedisReply>> pipeline(const std::vector<std::vector<std::string>>& cmds);
  /// Closes the connection (the next call reconnects).
  void close();
  bool connected() const { return ctx_ != nullptr; }
  const RedisUrl& url() const { return url_; }

 private:
  Error io_error(const char* during);

  RedisUrl url_;
  RedisTimeouts timeouts_;
  redisContext* ctx_ = nullptr;
};

/// "ERR ..." of an error reply, or the type that was not wanted, for messages.
std::string describe(const RedisReply& r);

/// Field `name` of a stream entry's flat [field, value, ...] array, or null.
const std::string* entry_field(const RedisReply& fields, std::string_view name);

}  // namespace vmfork::pool
