// cxx_features.cpp: iostreams word count of stdin, vector/map/unordered_map/string, std::sort, custom + std::runtime_error exceptions, unique_ptr; prints a deterministic summary ending in "PASS"; exit 0 (1 and "FAIL" if a check fails).
#include <algorithm>
#include <cstddef>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct ParseError : std::exception {
    explicit ParseError(std::string w) : what_(std::move(w)) {}
    const char *what() const noexcept override { return what_.c_str(); }
    std::string what_;
};

int parse_digit(char c)
{
    if (c < '0' || c > '9')
        throw ParseError(std::string("not a digit: ") + c);
    return c - '0';
}

struct Shape {
    virtual ~Shape() = default;
    virtual long area() const = 0;
    virtual std::string name() const = 0;
};

struct Rect : Shape {
    Rect(long w, long h) : w_(w), h_(h) {}
    long area() const override { return w_ * h_; }
    std::string name() const override { return "rect"; }
    long w_, h_;
};

struct Square : Rect {
    explicit Square(long s) : Rect(s, s) {}
    std::string name() const override { return "square"; }
};

int destroyed = 0;
struct Tracked {
    ~Tracked() { destroyed++; }
};

} // namespace

int main()
{
    int failures = 0;

    // 1. word counting from stdin
    std::map<std::string, std::size_t> freq;
    std::unordered_map<std::size_t, std::size_t> by_length;
    std::string word;
    std::size_t words = 0, chars = 0;
    while (std::cin >> word) {
        words++;
        chars += word.size();
        freq[word]++;
        by_length[word.size()]++;
    }
    std::cout << "words=" << words << " unique=" << freq.size() << " chars=" << chars << '\n';
    std::vector<std::pair<std::string, std::size_t>> top(freq.begin(), freq.end());
    std::sort(top.begin(), top.end(), [](const auto &a, const auto &b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    for (std::size_t i = 0; i < top.size() && i < 3; i++)
        std::cout << "top" << i + 1 << "=" << top[i].first << ":" << top[i].second << '\n';
    std::vector<std::size_t> lens;
    for (const auto &kv : by_length)
        lens.push_back(kv.first);
    std::sort(lens.begin(), lens.end());
    std::cout << "lengths=";
    for (std::size_t i = 0; i < lens.size(); i++)
        std::cout << (i ? "," : "") << lens[i] << "x" << by_length[lens[i]];
    std::cout << '\n';

    // 2. sorting a deterministic pseudo-random vector
    std::vector<unsigned> v;
    unsigned x = 12345;
    for (int i = 0; i < 10000; i++) {
        x = x * 1103515245u + 12345u;
        v.push_back((x >> 8) % 100000);
    }
    std::sort(v.begin(), v.end());
    bool sorted = std::is_sorted(v.begin(), v.end());
    std::cout << "sorted=" << sorted << " min=" << v.front() << " max=" << v.back()
              << " median=" << v[v.size() / 2] << '\n';
    failures += !sorted;

    // 3. exceptions: custom type and std::runtime_error, through a few frames
    int caught = 0;
    try {
        int sum = 0;
        for (char c : std::string("12a4"))
            sum += parse_digit(c);
        std::cout << "unreachable sum=" << sum << '\n';
    } catch (const ParseError &e) {
        std::cout << "caught ParseError: " << e.what() << '\n';
        caught++;
    }
    try {
        std::vector<int> small(3);
        (void)small.at(10);
    } catch (const std::out_of_range &) {
        std::cout << "caught out_of_range\n";
        caught++;
    }
    try {
        try {
            throw std::runtime_error("inner failure");
        } catch (const std::runtime_error &e) {
            std::cout << "caught runtime_error: " << e.what() << " (rethrowing)\n";
            caught++;
            throw;
        }
    } catch (const std::exception &e) {
        std::cout << "caught rethrown std::exception: " << e.what() << '\n';
        caught++;
    }
    std::cout << "exceptions_caught=" << caught << '\n';
    failures += caught != 4;

    // 4. unique_ptr, polymorphism, RAII
    {
        std::vector<std::unique_ptr<Shape>> shapes;
        shapes.push_back(std::make_unique<Rect>(3, 4));
        shapes.push_back(std::make_unique<Square>(5));
        shapes.push_back(std::make_unique<Rect>(2, 7));
        long total = 0;
        for (const auto &s : shapes) {
            std::cout << s->name() << " area=" << s->area() << '\n';
            total += s->area();
        }
        std::cout << "total_area=" << total << '\n';
        failures += total != 51;
        auto t1 = std::make_unique<Tracked>();
        std::unique_ptr<Tracked> t2 = std::move(t1);
        failures += t1 != nullptr;
        auto arr = std::make_unique<Tracked[]>(4);
    }
    std::cout << "destroyed=" << destroyed << '\n';
    failures += destroyed != 5;

    std::cout << (failures ? "FAIL" : "PASS") << '\n';
    return failures ? 1 : 0;
}
