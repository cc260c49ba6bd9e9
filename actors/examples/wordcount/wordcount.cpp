// troupe-wordcount: a word count spread over every shard, checked against the text.
//
//   main thread ──line_batch──▶ reader ──word──▶ counter
//                               1 per shard      4 per shard; hash(word) picks one
//
// The main thread generates a text (the same for a seed, whatever the shard
// count) and feeds it to the readers in batches; a reader sends each word to
// the one counter that owns it. Then the main thread asks every counter what
// it counted and checks every count against the text.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "troupe/troupe.hpp"

namespace {

using troupe::address;

constexpr std::size_t lines_per_batch = 256;
constexpr std::uint64_t batches_in_flight = 4;  // per reader, between two flushes
constexpr int counters_per_shard = 4;
constexpr std::size_t top_n = 10;
constexpr std::chrono::seconds patience{60};  // for any one ask; the demo takes far less

// Messages must be nothrow move-constructible; std::string and std::vector are.
struct line_batch {
  std::vector<std::string> lines;
};
struct word {
  std::string text;
};
struct flush {};    ///< to a reader: answered once every word it sent is counted
struct barrier {};  ///< to a counter: answered after the words its sender sent before
struct report {};   ///< to a counter: answered with its word_counts
using word_counts = std::vector<std::pair<std::string, std::uint64_t>>;

bool more_frequent(const word_counts::value_type& a, const word_counts::value_type& b) {
  return a.second != b.second ? a.second > b.second : a.first < b.first;
}

/// A seeded source of lines of 8 to 16 words, drawn from 400 words with Zipf
/// frequencies (the k-th word about 1/k as often as the first). It counts
/// every word it hands out: the truth the actors' counts are checked against.
class corpus {
 public:
  explicit corpus(std::uint64_t seed) : rng_(seed) {
    vocabulary_ = {"the", "of",   "and",  "to",   "a",   "in",  "is",   "it",  "you",  "that",
                   "he",  "was",  "for",  "on",   "are", "as",  "with", "his", "they", "at",
                   "be",  "this", "have", "from", "or",  "one", "had",  "by",  "word", "but"};
    // Then made-up words ("baba", "bebaba", ...; none is one of the above). At
    // most 6 letters: so short a std::string, and so a word message, never allocates.
    const std::string_view consonants = "bdfgklmnprstvz", vowels = "aeiou";
    for (std::size_t i = 0; vocabulary_.size() < 400; ++i) {
      std::string& w = vocabulary_.emplace_back();
      for (std::size_t k = i, syllables = 2 + i % 2; syllables-- > 0; k /= 70) {
        w += {consonants[k % 70 / 5], vowels[k % 5]};
      }
    }
    // 2^16 slots shared out in proportion to 1/rank (the rarest word still
    // gets 25), so that one 16-bit random number picks a word.
    std::vector<double> cdf;
    double sum = 0;
    for (double k = 1; cdf.size() < vocabulary_.size(); ++k) cdf.push_back(sum += 1 / k);
    for (std::size_t j = 0; j < slots_.size(); ++j) {
      const double u = (static_cast<double>(j) + 0.5) / static_cast<double>(slots_.size()) * sum;
      slots_[j] =
          static_cast<std::uint16_t>(std::upper_bound(cdf.begin(), cdf.end() - 1, u) - cdf.begin());
    }
    counts_.assign(vocabulary_.size(), 0);
  }

  std::vector<std::string> next_lines(std::size_t n) {
    std::vector<std::string> lines(n);
    for (std::string& line : lines) {
      line.reserve(112);  // 16 words of up to 6 letters, and spaces
      for (std::uint64_t i = 0, len = 8 + rng_() % 9; i < len; ++i) {
        const std::uint16_t k = slots_[rng_() >> 48];
        if (i > 0) line += ' ';
        line += vocabulary_[k];
        ++counts_[k];
      }
    }
    return lines;
  }

  std::size_t vocabulary_size() const { return vocabulary_.size(); }
  /// What a correct count finds: each word used so far, with its count.
  word_counts truth() const {
    word_counts t;
    for (std::size_t k = 0; k < counts_.size(); ++k) {
      if (counts_[k] > 0) t.emplace_back(vocabulary_[k], counts_[k]);
    }
    return t;
  }

 private:
  std::mt19937_64 rng_;  // the standard fixes its output: the same text everywhere
  std::vector<std::string> vocabulary_;
  std::array<std::uint16_t, 1 << 16> slots_{};
  std::vector<std::uint64_t> counts_;
};

class counter : public troupe::actor<counter, word, barrier, report> {
 public:
  void on(const word& w) { ++counts_[w.text]; }
  void on(const barrier&) {}  // the reply (troupe::done) is all a barrier needs
  word_counts on(const report&) { return {counts_.begin(), counts_.end()}; }

 private:
  std::unordered_map<std::string, std::uint64_t> counts_;
};

class reader : public troupe::actor<reader, line_batch, flush> {
 public:
  explicit reader(std::vector<address> counters) : counters_(std::move(counters)) {}

  void on(const line_batch& b) {
    for (std::string_view rest : b.lines) {
      while (!rest.empty()) {
        const std::size_t end = std::min(rest.find(' '), rest.size());
        const std::string_view w = rest.substr(0, end);
        tell(counters_[std::hash<std::string_view>{}(w) % counters_.size()], word{std::string(w)});
        rest.remove_prefix(std::min(end + 1, rest.size()));
      }
    }
  }

  // Messages from one sender to one receiver arrive in order, so a counter
  // answers this reader's barrier only after every word this reader sent it.
  troupe::task<> on(const flush&) {
    for (const address& c : counters_) (co_await ask<troupe::done>(c, barrier{}, patience)).value();
  }

 private:
  std::vector<address> counters_;
};

std::string grouped(std::uint64_t n) {  // 2400116 -> "2,400,116"
  std::string s = std::to_string(n);
  for (std::size_t i = s.size(); i > 3; i -= 3) s.insert(i - 3, 1, ',');
  return s;
}

int run(unsigned shards, std::uint64_t lines, std::uint64_t seed) {
  troupe::system sys(troupe::system_options{.shards = shards});
  const int n_shards = static_cast<int>(sys.shard_count());
  std::vector<address> counters, readers;
  for (int i = 0; i < n_shards * counters_per_shard; ++i) {  // round-robin over the shards
    counters.push_back(sys.spawn<counter>(troupe::spawn_options{.shard = i}));
  }
  for (int i = 0; i < n_shards; ++i) {
    readers.push_back(sys.spawn<reader>(troupe::spawn_options{.shard = i}, counters));
  }

  // Feed the readers in turn, a batch each per round. Flow control: every
  // `batches_in_flight` rounds, a reader is flushed (the ask returns once all
  // its words are counted) before it gets more, so no mailbox fills up.
  const auto t0 = std::chrono::steady_clock::now();
  corpus text(seed);
  for (std::uint64_t fed = 0, batch = 0; fed < lines; fed += lines_per_batch, ++batch) {
    const std::uint64_t round = batch / readers.size();
    const address& r = readers[batch % readers.size()];
    if (round > 0 && round % batches_in_flight == 0) {
      sys.ask<troupe::done>(r, flush{}, patience).value();
    }
    sys.tell(r, line_batch{text.next_lines(std::min<std::uint64_t>(lines_per_batch, lines - fed))});
  }
  for (const address& r : readers) sys.ask<troupe::done>(r, flush{}, patience).value();

  word_counts counted;  // each word lives in one counter only: the parts do not overlap
  for (const address& c : counters) {
    word_counts part = sys.ask<word_counts>(c, report{}, patience).value();
    counted.insert(counted.end(), part.begin(), part.end());
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - t0;
  word_counts truth = text.truth();
  std::sort(counted.begin(), counted.end(), more_frequent);
  std::sort(truth.begin(), truth.end(), more_frequent);
  const bool ok = counted == truth;
  std::uint64_t words = 0;
  for (const auto& [w, n] : counted) words += n;
  const std::size_t top = std::min(top_n, counted.size());

  std::printf("troupe-wordcount: %d shards on %s; %zu actors: a reader per shard, %d counters\n",
              n_shards, sys.io_description().c_str(), readers.size() + counters.size(),
              n_shards * counters_per_shard);
  std::printf("text:    %s lines of 8 to 16 words from %zu (seed %llu)\n", grouped(lines).c_str(),
              text.vocabulary_size(), static_cast<unsigned long long>(seed));
  std::printf("counted: %s words, %s distinct; the top %zu:\n", grouped(words).c_str(),
              grouped(counted.size()).c_str(), top);
  for (std::size_t i = 0; i < top; ++i) {
    std::printf("  %2zu. %-6s %10s\n", i + 1, counted[i].first.c_str(),
                grouped(counted[i].second).c_str());
  }
  std::printf("check:   %s\n", ok ? "counts equal the text's, word for word" : "COUNTS DIFFER");
  const troupe::stats st = sys.counters();
  std::printf("time:    %.3f s for %s messages: %.2f M msg/s (%s dead letters)\n", elapsed.count(),
              grouped(st.delivered).c_str(),
              static_cast<double>(st.delivered) / elapsed.count() / 1e6,
              grouped(st.dead_letters).c_str());

  sys.stop();
  const troupe::stats end = sys.counters();
  const bool balanced = end.sent == end.delivered + end.dead_letters;
  std::printf("stopped: sent %s = delivered %s + dead letters %s%s\n", grouped(end.sent).c_str(),
              grouped(end.delivered).c_str(), grouped(end.dead_letters).c_str(),
              balanced ? "" : "  <- DOES NOT ADD UP");
  return ok && balanced ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    CLI::App app{"troupe-wordcount: counts the words of a generated text on every shard"};
    unsigned shards = 0;
    std::uint64_t lines = 200'000, seed = 42;
    app.add_option("--shards", shards, "shards (threads); 0 = one per core")
        ->check(CLI::Range(0u, 1024u));
    app.add_option("--lines", lines, "lines of text")->check(CLI::Range(1ull, 100'000'000ull));
    app.add_option("--seed", seed, "seed of the text generator");
    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(spdlog::level::warn);  // keep the engine's info lines out of the report
    return run(shards, lines, seed);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "troupe-wordcount: %s\n", ex.what());
    return 1;
  }
}
