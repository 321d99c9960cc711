// One Redis connection over hiredis (see redis_conn.h).
#include "pool/redis_conn.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <charconv>

namespace vmfork::pool {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = ms.count() / 1000;
  tv.tv_usec = (ms.count() % 1000) * 1000;
  return tv;
}

bool parse_int(std::string_view s, int lo, int hi, int* out) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Copies a hiredis reply tree. Depth is bounded by what we send: stream replies nest at most
// five deep.
RedisReply copy(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::kString; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::kStatus; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::kError; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::kInteger; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; i++) out.elements.push_back(copy(r->element[i]));
      break;
    default: out.type = RedisReply::Type::kNil; break;
  }
  return out;
}

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using OwnedReply = std::unique_ptr<redisReply, ReplyFree>;

}  // namespace

Result<RedisUrl> RedisUrl::parse(std::string_view url) {
  RedisUrl u;
  constexpr std::string_view kTcp = "redis://", kUnix = "unix://";
  if (url.starts_with(kUnix)) {
    std::string_view rest = url.substr(kUnix.size());
    if (size_t q = rest.find('?'); q != std::string_view::npos) {
      std::string_view query = rest.substr(q + 1);
      rest = rest.substr(0, q);
      if (!query.starts_with("db=") || !parse_int(query.substr(3), 0, 1 << 20, &u.db))
        return plain_error("redis URL: only ?db=N is understood after a unix:// path");
    }
    if (rest.empty() || rest[0] != '/') return plain_error("redis URL: unix:// wants an absolute socket path");
    u.socket_path = std::string(rest);
    return u;
  }
  if (!url.starts_with(kTcp)) return plain_error("redis URL: '" + std::string(url) + "' is not redis://... or unix://...");
  std::string_view rest = url.substr(kTcp.size());
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty() && !parse_int(db, 0, 1 << 20, &u.db)) return plain_error("redis URL: bad db number '" + std::string(db) + "'");
  }
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (size_t colon = cred.find(':'); colon != std::string_view::npos) {
      u.user = std::string(cred.substr(0, colon));
      u.password = std::string(cred.substr(colon + 1));
    } else {
      u.password = std::string(cred);  // redis://secret@host: a password alone, as redis-cli reads it
    }
  }
  std::string_view port;
  if (rest.starts_with("[")) {  // [IPv6]:port
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return plain_error("redis URL: unclosed '[' in the host");
    u.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (rest.starts_with(":")) port = rest.substr(1);
    else if (!rest.empty()) return plain_error("redis URL: junk after the host");
  } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    u.host = std::string(rest.substr(0, colon));
    port = rest.substr(colon + 1);
  } else {
    u.host = std::string(rest);
  }
  if (u.host.empty()) return plain_error("redis URL: no host");
  if (!port.empty() && !parse_int(port, 1, 65535, &u.port))
    return plain_error("redis URL: bad port '" + std::string(port) + "'");
  return u;
}

std::string RedisUrl::where() const {
  if (!socket_path.empty()) return socket_path;
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

const std::string& RedisReply::text() const {
  static const std::string kEmpty;
  return type == Type::kString || type == Type::kStatus ? str : kEmpty;
}

std::string describe(const RedisReply& r) {
  switch (r.type) {
    case RedisReply::Type::kError: return r.str;
    case RedisReply::Type::kNil: return "unexpected nil reply";
    case RedisReply::Type::kString: return "unexpected string reply";
    case RedisReply::Type::kStatus: return "unexpected status reply " + r.str;
    case RedisReply::Type::kInteger: return "unexpected integer reply";
    case RedisReply::Type::kArray: return "unexpected array reply";
  }
  return "unexpected reply";
}

const std::string* entry_field(const RedisReply& fields, std::string_view name) {
  if (!fields.is_array()) return nullptr;
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2)
    if (fields.elements[i].text() == name && fields.elements[i + 1].type == RedisReply::Type::kString)
      return &fields.elements[i + 1].str;
  return nullptr;
}

RedisConn::RedisConn(RedisUrl url, RedisTimeouts timeouts) : url_(std::move(url)), timeouts_(timeouts) {}

RedisConn::~RedisConn() { close(); }

void RedisConn::close() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

Error RedisConn::io_error(const char* during) {
  Error e = plain_error("redis " + url_.where() + ": " + during + ": " +
                        (ctx_ && ctx_->errstr[0] ? ctx_->errstr : "connection lost"));
  close();
  return e;
}

Status RedisConn::connect() {
  if (ctx_) return {};
  const timeval ct = to_timeval(timeouts_.connect);
  ctx_ = url_.socket_path.empty() ? redisConnectWithTimeout(url_.host.c_str(), url_.port, ct)
                                  : redisConnectUnixWithTimeout(url_.socket_path.c_str(), ct);
  if (!ctx_) return plain_error("redis " + url_.where() + ": connect: out of memory");
  if (ctx_->err) return io_error("connect");
  if (redisSetTimeout(ctx_, to_timeval(timeouts_.command)) != REDIS_OK) return io_error("set timeout");
  std::vector<std::vector<std::string>> setup;
  if (!url_.password.empty()) {
    if (url_.user.empty()) setup.push_back({"AUTH", url_.password});
    else setup.push_back({"AUTH", url_.user, url_.password});
  }
  if (url_.db != 0) setup.push_back({"SELECT", std::to_string(url_.db)});
  if (setup.empty()) return {};
  auto replies = pipeline(setup);
  if (!replies.ok()) return replies.error();
  for (const auto& r : *replies) {
    if (r.is_error()) {
      close();
      return plain_error("redis " + url_.where() + ": " + (setup[0][0] == "AUTH" ? "AUTH/SELECT: " : "SELECT: ") + r.str);
    }
  }
  return {};
}

Result<RedisReply> RedisConn::command(const std::vector<std::string>& argv) {
  auto r = pipeline({argv});
  if (!r.ok()) return r.error();
  return std::move((*r)[0]);
}

Result<std::vector<RedisReply>> RedisConn::pipeline(const std::vector<std::vector<std::string>>& cmds) {
  VF_TRY(connect());
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& cmd : cmds) {
    argv.clear();
    lens.clear();
    for (const auto& a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, int(argv.size()), argv.data(), lens.data()) != REDIS_OK)
      return io_error("append command");
  }
  std::vector<RedisReply> out;
  out.reserve(cmds.size());
  for (size_t i = 0; i < cmds.size(); i++) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) return io_error(cmds[i][0].c_str());
    OwnedReply reply(static_cast<redisReply*>(raw));
    out.push_back(copy(reply.get()));
  }
  return out;
}

}  // namespace vmfork::pool
