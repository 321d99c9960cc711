// JSON-lines requests and responses (see protocol.h).
#include "pool/protocol.h"

#include <cmath>
#include <exception>

#include "engine/result_json.h"
#include "pool/base64.h"

namespace vmfork::pool {

using nlohmann::json;

namespace {

// Invalid UTF-8 (which only guest-derived text such as a fault message can hold) becomes
// U+FFFD instead of an exception.
std::string dump_line(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  s += '\n';
  return s;
}

Result<uint64_t> get_uint(const json& v, const std::string& name, uint64_t min, uint64_t max) {
  if (!v.is_number_integer()) return plain_error(name + ": not an integer");
  if (!v.is_number_unsigned() || v.get<uint64_t>() < min)
    return plain_error(name + ": must be at least " + std::to_string(min));
  uint64_t n = v.get<uint64_t>();
  if (n > max) return plain_error(name + ": must be at most " + std::to_string(max));
  return n;
}

const std::string& str(const json& v) { return v.get_ref<const std::string&>(); }

Status parse_limits(const json& limits, Request* r) {
  if (!limits.is_object()) return plain_error("limits: not an object");
  for (const auto& [key, v] : limits.items()) {
    if (key == "max_output_bytes") {
      VF_ASSIGN(r->max_output_bytes, get_uint(v, "limits.max_output_bytes", 1, kMaxMaxOutput));
    } else {
      return plain_error("limits: unknown field '" + key.substr(0, 64) + "'");
    }
  }
  return Status::Ok();
}

// "files": {"/guest/path": "base64" | {"data": "base64", "mode": 420}, ...}
Status parse_files(const json& files, Request* r) {
  if (!files.is_object()) return plain_error("files: not an object");
  if (files.size() > 4096) return plain_error("files: more than 4096 entries");
  for (const auto& [path, v] : files.items()) {
    const std::string at = "files[" + path.substr(0, 64) + "]";
    if (path.empty() || path[0] != '/') return plain_error(at + ": the guest path must be absolute");
    engine::JobFile f;
    f.path = path;
    const json* data = &v;
    if (v.is_object()) {
      for (const auto& [key, fv] : v.items()) {
        if (key == "data") {
          data = &fv;
        } else if (key == "mode") {
          VF_ASSIGN(uint64_t mode, get_uint(fv, at + ".mode", 0, 07777));
          f.mode = uint32_t(mode);
        } else {
          return plain_error(at + ": unknown field '" + key.substr(0, 64) + "'");
        }
      }
      if (data == &v) return plain_error(at + ": data missing");
    }
    if (!data->is_string()) return plain_error(at + ": not a base64 string");
    auto bytes = base64_decode(str(*data));
    if (!bytes.ok()) return plain_error(at + ": " + bytes.error().what);
    f.data = std::move(bytes).value();
    r->files.files.push_back(std::move(f));
  }
  return {};
}

Status parse_collect(const json& c, Request* r) {
  if (!c.is_array()) return plain_error("collect: not an array");
  if (c.size() > 4096) return plain_error("collect: more than 4096 entries");
  for (size_t i = 0; i < c.size(); i++) {
    if (!c[i].is_string() || str(c[i]).empty() || str(c[i])[0] != '/')
      return plain_error("collect[" + std::to_string(i) + "]: not an absolute path");
    r->files.collect.push_back(str(c[i]));
  }
  return {};
}

Status parse_argv(const json& argv, Request* r) {
  if (!argv.is_array()) return plain_error("argv: not an array");
  if (argv.size() > kMaxArgs) return plain_error("argv: more than " + std::to_string(kMaxArgs) + " entries");
  size_t bytes = 0;
  r->argv.reserve(argv.size());
  for (size_t i = 0; i < argv.size(); i++) {
    const std::string at = "argv[" + std::to_string(i) + "]";
    if (!argv[i].is_string()) return plain_error(at + ": not a string");
    const std::string& a = str(argv[i]);
    // The guest gets NUL-terminated strings: a NUL inside would silently cut the argument.
    if (a.find('\0') != std::string::npos) return plain_error(at + ": contains a NUL byte");
    bytes += a.size() + 1;
    if (bytes > kMaxArgBytes) return plain_error("argv: more than " + std::to_string(kMaxArgBytes) + " bytes");
    r->argv.push_back(a);
  }
  return Status::Ok();
}

Result<Request> parse_object(const json& j, json* id) {
  if (!j.is_object()) return plain_error("request: not a JSON object");
  auto it = j.find("id");
  if (it == j.end()) return plain_error("id: missing");
  if (it->is_string()) {
    if (str(*it).size() > kMaxIdBytes) return plain_error("id: longer than " + std::to_string(kMaxIdBytes) + " bytes");
  } else if (!it->is_number()) {
    return plain_error("id: not a string or a number");
  }
  Request r;
  r.id = *it;
  *id = *it;
  for (const auto& [key, v] : j.items()) {
    if (key == "id") continue;
    if (key == "op") {
      if (!v.is_string()) return plain_error("op: not a string");
      if (str(v) == "run") r.op = Op::kRun;
      else if (str(v) == "metrics") r.op = Op::kMetrics;
      else return plain_error("op: '" + str(v).substr(0, 64) + "' is not run or metrics");
    } else if (key == "template") {
      if (!v.is_string()) return plain_error("template: not a string");
      if (str(v).empty() || str(v).size() > 64) return plain_error("template: not 1 to 64 bytes long");
      r.template_name = str(v);
    } else if (key == "argv") {
      VF_TRY(parse_argv(v, &r));
    } else if (key == "stdin") {
      if (!v.is_string()) return plain_error("stdin: not a string");
      auto bytes = base64_decode(str(v));
      if (!bytes.ok()) return plain_error("stdin: " + bytes.error().what);
      r.stdin_data = std::move(bytes).value();
    } else if (key == "timeout_ms") {
      VF_ASSIGN(r.timeout_ms, get_uint(v, "timeout_ms", 1, kMaxTimeoutMs));
    } else if (key == "limits") {
      VF_TRY(parse_limits(v, &r));
    } else if (key == "files") {
      VF_TRY(parse_files(v, &r));
    } else if (key == "workdir") {
      if (!v.is_string() || str(v).empty() || str(v)[0] != '/') return plain_error("workdir: not an absolute path");
      r.files.workdir = str(v);
    } else if (key == "collect") {
      VF_TRY(parse_collect(v, &r));
    } else {
      return plain_error("unknown field '" + key.substr(0, 64) + "'");
    }
  }
  return r;
}

Result<JobTimings> parse_timings(const json& t) {
  if (!t.is_object()) return plain_error("timings_us: not an object");
  JobTimings out;
  for (auto [name, field] : {std::pair{"queue", &out.queue_us}, std::pair{"acquire", &out.acquire_us},
                             std::pair{"run", &out.run_us}, std::pair{"total", &out.total_us}}) {
    auto it = t.find(name);
    if (it == t.end() || !it->is_number()) return plain_error(std::string("timings_us.") + name + ": not a number");
    *field = it->get<double>();
  }
  return out;
}

Result<Response> parse_response_object(const json& j) {
  if (!j.is_object()) return plain_error("response: not a JSON object");
  Response r;
  auto field = [&](const char* name) -> const json* {
    auto it = j.find(name);
    return it == j.end() ? nullptr : &*it;
  };
  const json* id = field("id");
  if (!id) return plain_error("response: no id");
  r.id = *id;
  const json* ok = field("ok");
  if (!ok || !ok->is_boolean()) return plain_error("response: ok missing or not a boolean");
  r.ok = ok->get<bool>();
  if (!r.ok) {
    const json* e = field("error");
    if (!e || !e->is_object()) return plain_error("response: error missing or not an object");
    auto code = e->find("code"), msg = e->find("message");
    if (code == e->end() || !code->is_string() || msg == e->end() || !msg->is_string())
      return plain_error("response: error.code or error.message missing or not a string");
    r.error_code = str(*code);
    r.error_message = str(*msg);
    return r;
  }
  if (const json* m = field("metrics")) {
    if (!m->is_string()) return plain_error("response: metrics not a string");
    r.has_metrics = true;
    r.metrics = str(*m);
    return r;
  }
  const json* exit = field("exit");
  if (!exit || !exit->is_number_integer()) return plain_error("response: exit missing or not an integer");
  r.exit_code = exit->get<int>();
  const json* reason = field("reason");
  if (!reason || !reason->is_string()) return plain_error("response: reason missing or not a string");
  r.reason = str(*reason);
  for (auto [name, out] : {std::pair{"stdout", &r.stdout_data}, std::pair{"stderr", &r.stderr_data}}) {
    const json* v = field(name);
    if (!v || !v->is_string()) return plain_error(std::string("response: ") + name + " missing or not a string");
    auto bytes = base64_decode(str(*v));
    if (!bytes.ok()) return plain_error(std::string("response: ") + name + ": " + bytes.error().what);
    *out = std::move(bytes).value();
  }
  for (auto [name, out] : {std::pair{"stdout_bytes", &r.stdout_bytes}, std::pair{"stderr_bytes", &r.stderr_bytes}}) {
    const json* v = field(name);
    if (!v || !v->is_number_unsigned()) return plain_error(std::string("response: ") + name + " not a count");
    *out = v->get<uint64_t>();
  }
  if (const json* f = field("fault")) r.fault = *f;
  // Optional (older servers do not send them): objects, kept as given.
  for (auto [name, out] : {std::pair{"host", &r.host}, std::pair{"guest_reported", &r.guest_reported}}) {
    const json* v = field(name);
    if (!v) continue;
    if (!v->is_object()) return plain_error(std::string("response: ") + name + " not an object");
    *out = *v;
  }
  if (const json* e = field("vm_exits")) {
    if (!e->is_number_unsigned()) return plain_error("response: vm_exits not a count");
    r.vm_exits = e->get<uint64_t>();
  }
  const json* t = field("timings_us");
  if (!t) return plain_error("response: timings_us missing");
  auto timings = parse_timings(*t);
  if (!timings.ok()) return plain_error("response: " + timings.error().what);
  r.timings = *timings;
  if (const json* c = field("collected")) {
    if (!c->is_array()) return plain_error("response: collected not an array");
    for (const auto& e : *c) {
      if (!e.is_object()) return plain_error("response: collected entry not an object");
      auto path = e.find("path"), data = e.find("data"), mode = e.find("mode"), missing = e.find("missing"),
           truncated = e.find("truncated");
      if (path == e.end() || !path->is_string() || data == e.end() || !data->is_string() || mode == e.end() ||
          !mode->is_number_unsigned() || missing == e.end() || !missing->is_boolean() || truncated == e.end() ||
          !truncated->is_boolean())
        return plain_error("response: collected entry malformed");
      auto bytes = base64_decode(str(*data));
      if (!bytes.ok()) return plain_error("response: collected data: " + bytes.error().what);
      r.collected.push_back(engine::CollectedFile{str(*path), std::move(bytes).value(), mode->get<uint32_t>(),
                                                  missing->get<bool>(), truncated->get<bool>()});
    }
  }
  return r;
}

}  // namespace

const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::kBusy: return "busy";
    case ErrorCode::kBadRequest: return "bad_request";
    case ErrorCode::kUnknownTemplate: return "unknown_template";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

Result<Request> parse_request(std::string_view line, json* id) {
  *id = nullptr;
  // Nothing below is meant to throw; the catch keeps even bad_alloc from escaping to a
  // connection thread.
  try {
    json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return plain_error("request: not valid JSON");
    return parse_object(j, id);
  } catch (const std::exception& e) {
    return plain_error(std::string("request: ") + e.what());
  }
}

std::string serialize_request(const Request& r) {
  json j = {{"id", r.id}};
  if (r.op == Op::kMetrics) j["op"] = "metrics";
  if (!r.template_name.empty()) j["template"] = r.template_name;
  if (!r.argv.empty()) j["argv"] = r.argv;
  if (!r.stdin_data.empty()) j["stdin"] = base64_encode(r.stdin_data);
  if (r.timeout_ms != kDefaultTimeoutMs) j["timeout_ms"] = r.timeout_ms;
  if (r.max_output_bytes != kDefaultMaxOutput) j["limits"] = {{"max_output_bytes", r.max_output_bytes}};
  if (!r.files.files.empty()) {
    json files = json::object();
    for (const auto& f : r.files.files) files[f.path] = {{"data", base64_encode(f.data)}, {"mode", f.mode}};
    j["files"] = files;
  }
  if (!r.files.workdir.empty()) j["workdir"] = r.files.workdir;
  if (!r.files.collect.empty()) j["collect"] = r.files.collect;
  return dump_line(j);
}

std::string serialize_result(const json& id, const engine::RunResult& r, const JobTimings& t) {
  json j = {{"id", id}, {"ok", true}, {"exit", r.exit_code}, {"reason", engine::reason_name(r.reason)}};
  j["stdout"] = base64_encode(r.stdout_data);
  j["stderr"] = base64_encode(r.stderr_data);
  j["stdout_bytes"] = r.stdout_bytes;
  j["stderr_bytes"] = r.stderr_bytes;
  j["vm_exits"] = r.host.vm_exits;  // also in "host"; top-level as issue 11 asks
  // The fault object exactly as `vmfork run --json` writes it, without copying the output.
  engine::RunResult fault_only;
  fault_only.fault = r.fault;
  j["fault"] = engine::to_json(fault_only)["fault"];
  // Nanosecond resolution is all a clock reading has; rounding keeps the numbers short.
  auto us = [](double v) { return std::round(v * 1000) / 1000; };
  j["timings_us"] = {{"queue", us(t.queue_us)}, {"acquire", us(t.acquire_us)}, {"run", us(t.run_us)},
                     {"total", us(t.total_us)}};
  j["host"] = engine::host_json(r);
  j["guest_reported"] = engine::guest_json(r);
  if (!r.collected.empty()) {
    json c = json::array();
    for (const auto& f : r.collected)
      c.push_back({{"path", f.path}, {"data", base64_encode(f.data)}, {"mode", f.mode}, {"missing", f.missing},
                   {"truncated", f.truncated}});
    j["collected"] = c;
  }
  return dump_line(j);
}

std::string serialize_error(const json& id, ErrorCode code, std::string_view message) {
  return dump_line({{"id", id}, {"ok", false}, {"error", {{"code", error_code_name(code)}, {"message", message}}}});
}

std::string serialize_metrics(const json& id, std::string_view text) {
  return dump_line({{"id", id}, {"ok", true}, {"metrics", text}});
}

Result<Response> parse_response(std::string_view line) {
  try {
    json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return plain_error("response: not valid JSON");
    return parse_response_object(j);
  } catch (const std::exception& e) {
    return plain_error(std::string("response: ") + e.what());
  }
}

}  // namespace vmfork::pool
