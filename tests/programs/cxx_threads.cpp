// cxx_threads.cpp: std::thread (4 workers on an atomic and a mutex-guarded vector), std::async
// (launch::async futures, one carrying an exception) and a condition_variable hand-off.
// Prints fixed lines; exit 0.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

int main() {
  std::atomic<long> total{0};
  std::mutex mu;
  std::vector<int> ids;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; i++)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 50000; k++) total.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(mu);
      ids.push_back(i);
    });
  for (auto& t : threads) t.join();
  std::sort(ids.begin(), ids.end());
  std::printf("threads: total=%ld ids=%d%d%d%d\n", total.load(), ids[0], ids[1], ids[2], ids[3]);

  std::vector<std::future<long>> parts;
  for (long p = 0; p < 4; p++)
    parts.push_back(std::async(std::launch::async, [p] {
      long s = 0;
      for (long i = p * 250000 + 1; i <= (p + 1) * 250000; i++) s += i;
      return s;
    }));
  long sum = 0;
  for (auto& f : parts) sum += f.get();
  auto bad = std::async(std::launch::async, []() -> int { throw std::runtime_error("from async"); });
  std::string caught;
  try {
    bad.get();
  } catch (const std::exception& e) {
    caught = e.what();
  }
  std::printf("async: sum=%ld caught=%s\n", sum, caught.c_str());

  std::condition_variable cv;
  bool ready = false;
  int value = 0;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return ready; });
    value *= 2;
  });
  {
    std::lock_guard<std::mutex> lock(mu);
    value = 21;
    ready = true;
  }
  cv.notify_one();
  waiter.join();
  std::printf("condition_variable: %d, hardware_concurrency>0 %d\n", value, std::thread::hardware_concurrency() > 0);
  return 0;
}
