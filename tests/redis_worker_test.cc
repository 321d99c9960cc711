// `vmfork worker` on a real redis-server (Debian's, started per test on a free loopback port,
// no persistence) and real clones of a kernel-ready template: Redis URLs as units; the
// connection across a Redis restart; two workers answering 1,000 jobs exactly once; a SIGKILLed
// `vmfork worker` process whose pending jobs the other claims; a poison job dead-lettered after
// max-deliveries and malformed entries answered; jobs longer than claim-idle not claimed from a
// live worker; Redis restarted under a running worker, which
// keeps the results it finished meanwhile and stores them afterwards (metrics scraped over HTTP
// on the way); SIGTERM draining a worker process. The worker tests need /dev/kvm.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/template.h"
#include "kvm_test_util.h"
#include "pool/http_metrics.h"
#include "pool/protocol.h"
#include "pool/redis_conn.h"
#include "pool/redis_queue.h"
#include "pool/redis_worker.h"
#include "pool/service.h"

using namespace vmfork;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kVmfork = VMFORK_BINARY;

// ---------------------------------------------------------------- helpers

int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(s);
    return -1;
  }
  close(s);
  return ntohs(a.sin_port);
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Waits for `pid` up to `timeout`; its exit status, or -1 (then it was SIGKILLed).
int reap(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  while (Clock::now() < deadline) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(10ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

std::filesystem::path temp_dir() {
  std::string tmpl = testing::TempDir() + "/vmfork_redis_XXXXXX";
  char* d = mkdtemp(tmpl.data());
  EXPECT_NE(d, nullptr);
  return tmpl;
}

// A redis-server on a free loopback port, without persistence, for one test.
class RedisServer {
 public:
  explicit RedisServer(std::filesystem::path dir) : dir_(std::move(dir)), port_(free_port()) {}
  ~RedisServer() { stop(); }

  bool start() {
    pid_ = spawn({"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", dir_.string(), "--protected-mode", "no"},
                 (dir_ / "redis.log").string());
    pool::RedisConn c(url(), pool::RedisTimeouts{});
    for (auto deadline = Clock::now() + 10s; Clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
      auto r = c.command({"PING"});
      if (r.ok() && r->text() == "PONG") return true;
    }
    return false;
  }
  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
  pool::RedisUrl url() const {
    pool::RedisUrl u;
    u.host = "127.0.0.1";
    u.port = port_;
    return u;
  }
  std::string url_text() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  std::filesystem::path dir_;
  int port_;
  pid_t pid_ = -1;
};

int64_t integer(pool::RedisConn& c, const std::vector<std::string>& cmd) {
  auto r = c.command(cmd);
  return r.ok() && r->type == pool::RedisReply::Type::kInteger ? r->integer : -1;
}

// Pending entries of the group: total (XPENDING summary) or of one consumer.
int64_t pending(pool::RedisConn& c, const std::string& consumer = "") {
  if (consumer.empty()) {
    auto r = c.command({"XPENDING", "jobs", "g"});
    return r.ok() && r->is_array() && !r->elements.empty() ? r->elements[0].integer : -1;
  }
  auto r = c.command({"XPENDING", "jobs", "g", "-", "+", "100000", consumer});
  return r.ok() && r->is_array() ? int64_t(r->elements.size()) : -1;
}

struct Stored {
  std::string job_entry, consumer, result;
};

// Every entry of stream `key`, as field maps.
std::vector<std::map<std::string, std::string>> entries(pool::RedisConn& c, const std::string& key) {
  std::vector<std::map<std::string, std::string>> out;
  auto r = c.command({"XRANGE", key, "-", "+"});
  if (!r.ok()) return out;
  pool::for_each_entry(*r, [&](const std::string& id, const pool::RedisReply& f) {
    std::map<std::string, std::string> m{{"_id", id}};
    for (size_t i = 0; i + 1 < f.elements.size(); i += 2) m[f.elements[i].str] = f.elements[i + 1].str;
    out.push_back(std::move(m));
  });
  return out;
}

template <typename Pred>
bool eventually(std::chrono::milliseconds timeout, Pred pred) {
  for (auto deadline = Clock::now() + timeout; Clock::now() < deadline; std::this_thread::sleep_for(20ms))
    if (pred()) return true;
  return pred();
}

std::string echo_job(int i) {
  pool::Request r;
  r.id = i;
  r.argv = {"/bin/busybox", "echo", "job-" + std::to_string(i)};
  r.timeout_ms = 20'000;
  return pool::serialize_request(r);
}

// Enqueues echo jobs 0..n-1 in pipelined batches; entry ID -> job number.
std::map<std::string, int> enqueue_echoes(pool::RedisConn& c, int n) {
  std::map<std::string, int> ids;
  for (int start = 0; start < n; start += 200) {
    std::vector<std::vector<std::string>> cmds;
    for (int i = start; i < std::min(n, start + 200); i++) {
      std::string line = echo_job(i);
      line.pop_back();
      cmds.push_back({"XADD", "jobs", "*", "job", line});
    }
    auto r = c.pipeline(cmds);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return ids;
    for (size_t k = 0; k < r->size(); k++) ids[(*r)[k].str] = start + int(k);
  }
  return ids;
}

// Checks that every job of `ids` has exactly one (or, when `allow_repeats`, at least one)
// result, each with the job's own output. Returns job entry -> consumer that answered it.
std::map<std::string, std::string> check_results(pool::RedisConn& c, const std::map<std::string, int>& ids,
                                                 bool allow_repeats) {
  std::map<std::string, std::string> by;
  std::map<std::string, int> seen;
  for (auto& e : entries(c, "jobs:results")) {
    const std::string& je = e["job_entry"];
    auto it = ids.find(je);
    if (it == ids.end()) {
      ADD_FAILURE() << "result for an unknown job entry " << je;
      continue;
    }
    seen[je]++;
    by[je] = e["consumer"];
    auto resp = pool::parse_response(e["result"]);
    EXPECT_TRUE(resp.ok()) << e["result"];
    if (!resp.ok()) continue;
    EXPECT_TRUE(resp->ok) << e["result"];
    EXPECT_EQ(resp->id, it->second);
    EXPECT_EQ(resp->exit_code, 0);
    EXPECT_EQ(resp->stdout_data, "job-" + std::to_string(it->second) + "\n");
  }
  for (auto& [je, n] : ids) {
    if (allow_repeats) EXPECT_GE(seen[je], 1) << "job " << n << " (" << je << ") not answered";
    else EXPECT_EQ(seen[je], 1) << "job " << n << " (" << je << ") answered " << seen[je] << " times";
  }
  return by;
}

// ---------------------------------------------------------------- units (no Redis)

TEST(RedisUrl, Parses) {
  auto u = pool::RedisUrl::parse("redis://127.0.0.1:6380/2");
  ASSERT_TRUE(u.ok()) << u.error().message();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->db, 2);
  u = pool::RedisUrl::parse("redis://user:pw@redis.example");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->user, "user");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(u->port, 6379);
  u = pool::RedisUrl::parse("redis://:secret@[::1]:7000");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->password, "secret");
  EXPECT_EQ(u->port, 7000);
  EXPECT_EQ(u->where(), "[::1]:7000");
  u = pool::RedisUrl::parse("unix:///run/redis.sock?db=3");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->socket_path, "/run/redis.sock");
  EXPECT_EQ(u->db, 3);
  for (const char* bad : {"http://x", "redis://", "redis://h:0", "redis://h:99999", "redis://h:1x", "redis://h/x",
                          "unix://rel", "redis://[::1", "unix:///s?x=1"})
    EXPECT_FALSE(pool::RedisUrl::parse(bad).ok()) << bad;
}

// ---------------------------------------------------------------- Redis, no VMs

TEST(RedisConn, ReconnectsAfterARestart) {
  auto dir = temp_dir();
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  pool::RedisConn c(redis.url(), pool::RedisTimeouts{});
  auto r = c.command({"SET", "k", std::string("a\0b", 3)});
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto got = c.command({"GET", "k"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->str, std::string("a\0b", 3));
  auto bad = c.command({"NOSUCHCOMMAND"});
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(bad->is_error());
  redis.stop();
  auto down = c.command({"PING"});
  ASSERT_FALSE(down.ok());
  EXPECT_NE(down.error().what.find("redis 127.0.0.1:"), std::string::npos) << down.error().what;
  ASSERT_TRUE(redis.start());
  auto up = c.command({"PING"});
  ASSERT_TRUE(up.ok()) << up.error().message();
  EXPECT_EQ(up->text(), "PONG");
  std::filesystem::remove_all(dir);
}

TEST(RedisConn, TimesOutOnAHungServer) {
  // A listener that accepts (in the kernel backlog) but never answers.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(s, 4), 0);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  pool::RedisUrl u;
  u.host = "127.0.0.1";
  u.port = ntohs(a.sin_port);
  pool::RedisConn c(u, pool::RedisTimeouts{200ms, 200ms});
  auto r = c.command({"PING"});
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(c.connected());
  close(s);
}

// ---------------------------------------------------------------- workers on real clones

class RedisWorkers : public testing::Test {
 protected:
  void SetUp() override {
    VMFORK_REQUIRE_KVM();
    dir_ = temp_dir();
    redis_ = std::make_unique<RedisServer>(dir_);
    ASSERT_TRUE(redis_->start()) << "redis-server did not start (see " << (dir_ / "redis.log") << ")";
    auto s = snapshot::PageStore::open(dir_ / "store");
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_ = std::move(s).value();
    engine::TemplateSpec base;
    base.name = "base";
    base.mem_bytes = 64ull << 20;
    auto t = engine::create_template(base, *store_);
    ASSERT_TRUE(t.ok()) << t.error().message();
    conn_ = std::make_unique<pool::RedisConn>(redis_->url(), pool::RedisTimeouts{});
  }
  void TearDown() override {
    workers_.clear();
    services_.clear();
    for (pid_t p : procs_) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    redis_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // An in-process worker with its own Service.
  pool::RedisWorker* add_worker(const std::string& consumer, pool::RedisWorkerOptions o = {}) {
    pool::ServiceOptions so;
    so.templates = {"base"};
    so.workers = 1;
    so.pool.depth = 4;
    so.pool.mode = pool::Mode::kReset;
    auto svc = pool::Service::create(*store_, so);
    EXPECT_TRUE(svc.ok()) << svc.error().message();
    if (!svc.ok()) return nullptr;
    o.url = redis_->url();
    o.stream = "jobs";
    o.group = "g";
    o.consumer = consumer;
    o.backoff_max = 500ms;
    auto w = pool::RedisWorker::create(**svc, o);
    EXPECT_TRUE(w.ok()) << w.error().message();
    if (!w.ok()) return nullptr;
    services_.push_back(std::move(svc).value());
    workers_.push_back(std::move(w).value());
    workers_.back()->start();
    return workers_.back().get();
  }

  // A `vmfork worker` process.
  pid_t spawn_worker(const std::string& consumer, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {kVmfork, "worker", "--redis", redis_->url_text(), "--stream", "jobs",
                                     "--group", "g", "--consumer", consumer, "--template", "base", "--store",
                                     (dir_ / "store").string(), "--workers", "1", "--mode", "reset"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_t p = spawn(argv, (dir_ / (consumer + ".log")).string());
    procs_.push_back(p);
    return p;
  }

  std::string log_of(const std::string& name) {
    std::string out, path = (dir_ / (name + ".log")).string();
    FILE* f = fopen(path.c_str(), "r");
    if (!f) return "";
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    fclose(f);
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<snapshot::PageStore> store_;
  std::unique_ptr<pool::RedisConn> conn_;
  // Workers before services: a worker drains into its service.
  std::vector<std::unique_ptr<pool::Service>> services_;
  std::vector<std::unique_ptr<pool::RedisWorker>> workers_;
  std::vector<pid_t> procs_;
};

TEST_F(RedisWorkers, TwoWorkersAnswerAThousandJobsExactlyOnce) {
  auto* a = add_worker("a");
  auto* b = add_worker("b");
  ASSERT_TRUE(a && b);
  auto ids = enqueue_echoes(*conn_, 1000);
  ASSERT_EQ(ids.size(), 1000u);
  ASSERT_TRUE(eventually(120s, [&] { return integer(*conn_, {"XLEN", "jobs:results"}) >= 1000; }))
      << integer(*conn_, {"XLEN", "jobs:results"}) << " results";
  ASSERT_TRUE(eventually(5s, [&] { return pending(*conn_) == 0; }));
  auto by = check_results(*conn_, ids, /*allow_repeats=*/false);
  EXPECT_EQ(integer(*conn_, {"XLEN", "jobs:results"}), 1000);
  std::map<std::string, int> per;
  for (auto& [e, who] : by) per[who]++;
  EXPECT_GT(per["a"], 0);
  EXPECT_GT(per["b"], 0);
  auto sa = a->stats(), sb = b->stats();
  EXPECT_EQ(sa.acked + sb.acked, 1000u);
  EXPECT_EQ(sa.read + sb.read, 1000u);
  EXPECT_EQ(sa.claimed + sb.claimed + sa.dead + sb.dead + sa.retried + sb.retried, 0u);
  std::string m = a->metrics_text();
  EXPECT_NE(m.find("vmfork_queue_acked_total " + std::to_string(sa.acked) + "\n"), std::string::npos) << m;
  EXPECT_NE(m.find("vmfork_redis_up 1\n"), std::string::npos);
  EXPECT_NE(m.find("vmfork_jobs_total"), std::string::npos);  // the service's own metrics too
}

TEST_F(RedisWorkers, PendingJobsOfAKilledWorkerAreClaimedByTheOther) {
  const std::vector<std::string> opts = {"--claim-idle", "1s", "--inflight", "4"};
  pid_t a = spawn_worker("a", opts);
  pid_t b = spawn_worker("b", opts);
  auto ids = enqueue_echoes(*conn_, 300);
  ASSERT_EQ(ids.size(), 300u);
  // Kill a while it holds jobs and work remains.
  ASSERT_TRUE(eventually(60s, [&] { return pending(*conn_, "a") > 0 && integer(*conn_, {"XLEN", "jobs:results"}) > 20; }))
      << log_of("a");
  kill(a, SIGKILL);
  waitpid(a, nullptr, 0);
  procs_.erase(procs_.begin());
  std::set<std::string> orphans;
  auto r = conn_->command({"XPENDING", "jobs", "g", "-", "+", "1000", "a"});
  ASSERT_TRUE(r.ok());
  for (auto& e : r->elements) orphans.insert(e.elements[0].str);
  ASSERT_FALSE(orphans.empty()) << "a held no job when killed";

  ASSERT_TRUE(eventually(90s, [&] {
    return integer(*conn_, {"XLEN", "jobs:results"}) >= 300 && pending(*conn_) == 0;
  })) << integer(*conn_, {"XLEN", "jobs:results"}) << " results, " << pending(*conn_) << " pending\n"
      << log_of("b");
  // At least once: a job a stored and acked just before dying is not run again, and a job it
  // had not finished is run by b; every job has its right output.
  auto by = check_results(*conn_, ids, /*allow_repeats=*/true);
  for (const auto& e : orphans) EXPECT_EQ(by[e], "b") << e;
  EXPECT_EQ(pending(*conn_), 0);
  kill(b, SIGTERM);
  EXPECT_EQ(reap(b, 30s), 0) << log_of("b");
}

TEST_F(RedisWorkers, APoisonJobEndsInTheDeadLetterStream) {
  pool::RedisWorkerOptions o;
  o.claim_idle = 200ms;
  o.max_deliveries = 2;
  auto* w = add_worker("a", o);
  ASSERT_TRUE(w);
  const std::string poison = R"({"id":"p","template":"nope","argv":["/bin/busybox","true"]})";
  auto p = pool::enqueue_job(*conn_, "jobs", poison);
  ASSERT_TRUE(p.ok());
  auto bad = pool::enqueue_job(*conn_, "jobs", "{not json");
  ASSERT_TRUE(bad.ok());
  auto nofield = conn_->command({"XADD", "jobs", "*", "something", "else"});
  ASSERT_TRUE(nofield.ok());
  auto ok = pool::enqueue_job(*conn_, "jobs", echo_job(7));
  ASSERT_TRUE(ok.ok());

  ASSERT_TRUE(eventually(30s, [&] { return integer(*conn_, {"XLEN", "jobs:dead"}) == 1 && pending(*conn_) == 0; }))
      << integer(*conn_, {"XLEN", "jobs:dead"}) << " dead, " << pending(*conn_) << " pending";
  auto dead = entries(*conn_, "jobs:dead");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["job"], poison);
  EXPECT_EQ(dead[0]["job_entry"], *p);
  EXPECT_EQ(dead[0]["deliveries"], "3");
  EXPECT_NE(dead[0]["reason"].find("unknown_template"), std::string::npos) << dead[0]["reason"];

  std::map<std::string, pool::Response> results;
  for (auto& e : entries(*conn_, "jobs:results")) {
    auto r = pool::parse_response(e["result"]);
    ASSERT_TRUE(r.ok()) << e["result"];
    EXPECT_EQ(results.count(e["job_entry"]), 0u) << "two results for " << e["job_entry"];
    results[e["job_entry"]] = *r;
  }
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[*p].error_code, "internal");
  EXPECT_NE(results[*p].error_message.find("dead-lettered"), std::string::npos);
  EXPECT_EQ(results[*p].id, "p");
  EXPECT_EQ(results[*bad].error_code, "bad_request");
  EXPECT_EQ(results[nofield->str].error_code, "bad_request");
  EXPECT_NE(results[nofield->str].error_message.find("no 'job' field"), std::string::npos);
  EXPECT_TRUE(results[*ok].ok);
  EXPECT_EQ(results[*ok].stdout_data, "job-7\n");
  auto s = w->stats();
  EXPECT_EQ(s.dead, 1u);
  EXPECT_EQ(s.retried, 2u);  // delivered, claimed once, then dead-lettered on the third delivery
  EXPECT_EQ(s.claimed, 1u);
}

TEST_F(RedisWorkers, ALiveWorkersLongJobsAreNotClaimed) {
  pool::RedisWorkerOptions o;
  o.claim_idle = 300ms;  // far shorter than the jobs and their wait behind each other
  auto* a = add_worker("a", o);
  auto* b = add_worker("b", o);
  ASSERT_TRUE(a && b);
  pool::Request slow;
  slow.argv = {"/bin/busybox", "sleep", "1"};
  for (int i = 0; i < 3; i++) {
    slow.id = i;
    ASSERT_TRUE(pool::enqueue_job(*conn_, "jobs", pool::serialize_request(slow)).ok());
  }
  ASSERT_TRUE(eventually(30s, [&] { return integer(*conn_, {"XLEN", "jobs:results"}) >= 3 && pending(*conn_) == 0; }));
  std::this_thread::sleep_for(500ms);  // a duplicate would show up by now
  EXPECT_EQ(integer(*conn_, {"XLEN", "jobs:results"}), 3);
  EXPECT_EQ(a->stats().claimed + b->stats().claimed, 0u);
  EXPECT_EQ(a->stats().acked + b->stats().acked, 3u);
}

// A bare HTTP/1.0 GET on 127.0.0.1:port; the whole response.
std::string http_get(int port, const std::string& path) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  std::string out;
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
    if (write(s, req.data(), req.size()) == ssize_t(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = read(s, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
    }
  }
  close(s);
  return out;
}

TEST_F(RedisWorkers, KeepsResultsWhileRedisIsDownAndStoresThemAfterARestart) {
  auto* w = add_worker("a");
  ASSERT_TRUE(w);
  auto http = pool::MetricsHttp::start("127.0.0.1:0", [w] { return w->metrics_text(); });
  ASSERT_TRUE(http.ok()) << http.error().message();
  pool::Request slow;
  slow.argv = {"/bin/busybox", "sleep", "1"};
  for (int i = 0; i < 2; i++) {
    slow.id = i;
    ASSERT_TRUE(pool::enqueue_job(*conn_, "jobs", pool::serialize_request(slow)).ok());
  }
  ASSERT_TRUE(eventually(20s, [&] { return w->stats().read == 2; }));
  redis_->stop();  // SIGKILL: the data is gone with it
  ASSERT_TRUE(eventually(20s, [&] { return w->stats().unstored == 2; }));
  EXPECT_TRUE(eventually(5s, [&] { return !w->stats().redis_up; }));
  std::string scraped = http_get((*http)->port(), "/metrics");
  EXPECT_NE(scraped.find("200 OK"), std::string::npos) << scraped;
  EXPECT_NE(scraped.find("text/plain; version=0.0.4"), std::string::npos) << scraped;
  EXPECT_NE(scraped.find("vmfork_queue_unstored_results 2\n"), std::string::npos) << scraped;
  EXPECT_NE(scraped.find("vmfork_redis_up 0\n"), std::string::npos) << scraped;
  EXPECT_NE(http_get((*http)->port(), "/other").find("404"), std::string::npos);
  std::this_thread::sleep_for(1s);  // a few failed retries
  EXPECT_GT(w->stats().redis_errors, 0u);

  ASSERT_TRUE(redis_->start());
  ASSERT_TRUE(eventually(20s, [&] { return integer(*conn_, {"XLEN", "jobs:results"}) == 2; }));
  std::set<int> answered;
  for (auto& e : entries(*conn_, "jobs:results")) {
    auto r = pool::parse_response(e["result"]);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->ok) << e["result"];
    answered.insert(r->id.get<int>());
  }
  EXPECT_EQ(answered, (std::set<int>{0, 1}));
  // It goes on: the group is made again and new jobs are answered.
  auto e = pool::enqueue_job(*conn_, "jobs", echo_job(3));
  ASSERT_TRUE(e.ok());
  std::string after = "0-0";
  auto got = pool::wait_result(*conn_, "jobs:results", &after, *e, Clock::now() + 20s);
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_TRUE(got->has_value());
  auto r = pool::parse_response((*got)->result);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_data, "job-3\n");
  EXPECT_TRUE(eventually(5s, [&] { return w->stats().redis_up && w->stats().unstored == 0; }));
}

TEST_F(RedisWorkers, SigtermFinishesAndAcknowledgesJobsInFlight) {
  pid_t a = spawn_worker("a", {"--inflight", "2"});
  pool::Request slow;
  slow.argv = {"/bin/busybox", "sleep", "1"};
  for (int i = 0; i < 4; i++) {
    slow.id = i;
    ASSERT_TRUE(pool::enqueue_job(*conn_, "jobs", pool::serialize_request(slow)).ok());
  }
  ASSERT_TRUE(eventually(60s, [&] { return pending(*conn_, "a") > 0; })) << log_of("a");
  kill(a, SIGTERM);
  EXPECT_EQ(reap(a, 30s), 0) << log_of("a");
  procs_.clear();
  // Whatever it took is answered and acknowledged; the rest is still in the stream, unread.
  EXPECT_EQ(pending(*conn_), 0);
  const int64_t answered = integer(*conn_, {"XLEN", "jobs:results"});
  EXPECT_GE(answered, 1);
  auto r = conn_->command({"XINFO", "GROUPS", "jobs"});
  ASSERT_TRUE(r.ok() && r->is_array() && r->elements.size() == 1);
  int64_t lag = -1;
  const auto& g = r->elements[0].elements;
  for (size_t i = 0; i + 1 < g.size(); i += 2)
    if (g[i].str == "lag") lag = g[i + 1].integer;
  EXPECT_EQ(answered + lag, 4);
  EXPECT_NE(log_of("a").find("stopped: every job taken was answered"), std::string::npos) << log_of("a");
}

}  // namespace
