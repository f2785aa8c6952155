#include "domain/message_service.hpp"

#include "domain/upload_service.hpp"  // check_file_message

#include <boost/json.hpp>

#include <algorithm>
#include <array>

#include "domain/message_codec.hpp"

namespace chat4all {
namespace {
constexpr std::array<std::string_view, 4> known_channels = {"instagram", "messenger", "telegram",
                                                            "whatsapp"};
constexpr int max_wait_rounds = 16;  // each round settles at least one contender
}  // namespace

result<std::vector<std::string>> canonical_channels(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& c : in) {
    if (c == "all") {
      out.assign(known_channels.begin(), known_channels.end());
      continue;
    }
    if (std::find(known_channels.begin(), known_channels.end(), c) == known_channels.end()) {
      error e{errc::invalid_input, "unknown channel"};
      e.details.push_back(
          {"channels", "unknown channel '" + c.substr(0, 32) +
                           "'; use whatsapp, instagram, telegram, messenger or all"});
      return e;
    }
    out.push_back(c);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// The same text as serialising {"type":…,"content"|"file_id":…} with boost::json (content
// hashes of stored messages depend on it), without a DOM.
std::string canonical_payload_json(const message_payload& p) {
  if (p.type == message_payload::kind::text) {
    std::string out = R"({"type":"text","content":)";
    out += boost::json::serialize(boost::json::string_view(p.content.data(), p.content.size()));
    out += '}';
    return out;
  }
  return R"({"type":"file","file_id":")" + p.file_id.str() + "\"}";
}

message_service::message_service(membership_cache& members, message_store& messages, event_log& log,
                                 inflight_messages& inflight, const clock& clk,
                                 limits_config limits, upload_store* uploads)
    : members_(members),
      messages_(messages),
      log_(log),
      inflight_(inflight),
      clock_(clk),
      limits_(limits),
      uploads_(uploads) {}

result<accepted_message> message_service::prepare(const principal& who, send_request& req) const {
  if (req.payload.type == message_payload::kind::text) {
    if (req.payload.content.empty() || req.payload.content.size() > limits_.message_max_bytes) {
      error e{errc::invalid_input,
              "text content must be 1 to " + std::to_string(limits_.message_max_bytes) + " bytes"};
      e.details.push_back({"payload.content", "length out of range"});
      return e;
    }
  }  // file payloads were checked against the upload store by send_batch
  auto channels = canonical_channels(req.channels);
  if (!channels) return std::move(channels).err();
  accepted_message m;
  m.message_id = req.message_id;
  m.conversation = req.conversation;
  m.sender = who.id;
  m.payload_json = canonical_payload_json(req.payload);
  m.channels = std::move(channels).value();
  m.accepted_at = clock_.now_us();
  m.content_hash = content_hash(m.conversation, m.sender, m.payload_json, m.channels);
  m.traceparent = std::move(req.traceparent);
  return m;
}

task<result<void>> message_service::send(const principal& who, send_request req) {
  std::vector<send_request> one;
  one.push_back(std::move(req));
  auto results = co_await send_batch(who, std::move(one));
  co_return std::move(results.front());
}

task<std::vector<result<void>>> message_service::send_batch(const principal& who,
                                                            std::vector<send_request> reqs) {
  const std::size_t n = reqs.size();
  std::vector<result<void>> out(n);
  std::vector<std::optional<accepted_message>> prepared(n);
  enum class state { done, owned, waiting };
  std::vector<state> st(n, state::done);
  std::vector<bool> contended(n, false);

  for (std::size_t i = 0; i < n; ++i) {
    auto conv = co_await members_.require_member(reqs[i].conversation, who.id);
    if (!conv) {
      out[i] = std::move(conv).err();
      continue;
    }
    if (reqs[i].payload.type == message_payload::kind::file) {
      // A COMPLETED upload of the same conversation (SPEC §2, §5).
      error no_file{errc::invalid_input, "unknown file"};
      no_file.details.push_back(
          {"payload.file_id", "no completed file with this id in the conversation"});
      result<void> file = no_file;
      if (uploads_)
        file =
            co_await check_file_message(*uploads_, reqs[i].payload.file_id, reqs[i].conversation);
      if (!file) {
        out[i] = std::move(file).err();
        continue;
      }
    }
    auto m = prepare(who, reqs[i]);
    if (!m) {
      out[i] = std::move(m).err();
      continue;
    }
    prepared[i] = std::move(m).value();
  }

  // Claim ids; an id that is in flight with the same content waits for its owner; one
  // that is neither in flight nor stored is appended by this call.
  for (int round = 0; round < max_wait_rounds; ++round) {
    std::vector<std::size_t> fresh;
    std::vector<std::size_t> asking;
    std::vector<std::pair<uuid, std::uint64_t>> keys;
    for (std::size_t i = 0; i < n; ++i) {
      if (!prepared[i] || (round > 0 && st[i] != state::waiting)) continue;
      asking.push_back(i);
      keys.emplace_back(prepared[i]->message_id, prepared[i]->content_hash);
    }
    const auto claims = inflight_.try_claim_all(keys);
    for (std::size_t k = 0; k < asking.size(); ++k) {
      const auto i = asking[k];
      switch (claims[k]) {
        case inflight_messages::claim::fresh:
          st[i] = state::owned;
          fresh.push_back(i);
          break;
        case inflight_messages::claim::same:
          st[i] = state::waiting;
          break;
        case inflight_messages::claim::contended:
          st[i] = state::waiting;
          contended[i] = true;
          break;
        case inflight_messages::claim::conflict:
          st[i] = state::done;
          out[i] = error{errc::conflict, "message_id already used with different content"};
          break;
        case inflight_messages::claim::full:
          st[i] = state::done;
          out[i] = error{errc::unavailable, "too many messages in flight; retry shortly"};
          break;
      }
    }

    if (!fresh.empty()) {
      // Already stored (a retry of an old message)? One lookup for the whole batch.
      std::vector<uuid> ids;
      ids.reserve(fresh.size());
      for (auto i : fresh) ids.push_back(prepared[i]->message_id);
      auto hashes = co_await messages_.find_content_hashes(std::move(ids));
      std::vector<log_record> records;
      std::vector<std::size_t> appended;
      for (std::size_t k = 0; k < fresh.size(); ++k) {
        const auto i = fresh[k];
        const auto& m = *prepared[i];
        if (!hashes) {
          inflight_.abandon(m.message_id);
          st[i] = state::done;
          out[i] = hashes.err();
          continue;
        }
        if (const auto& h = (*hashes)[k]; h) {
          inflight_.release(m.message_id, *h == m.content_hash);
          st[i] = state::done;
          if (*h != m.content_hash)
            out[i] = error{errc::conflict, "message_id already used with different content"};
          continue;
        }
        records.push_back({std::to_string(m.conversation), encode_log_record(m), m.traceparent});
        appended.push_back(i);
      }
      if (!records.empty()) {
        auto r = co_await log_.append(messages_topic, std::move(records));
        for (auto i : appended) {
          st[i] = state::done;
          if (r) {
            inflight_.durable(prepared[i]->message_id);
          } else {
            inflight_.abandon(prepared[i]->message_id);
            out[i] = error{errc::unavailable, "the message log is unavailable; retry"};
          }
        }
      }
    }

    bool any_gone = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (st[i] != state::waiting) continue;
      if (contended[i]) {
        // The owner's outcome says nothing about this content: wait, then claim again.
        co_await inflight_.wait(prepared[i]->message_id);
        contended[i] = false;
        any_gone = true;
        continue;
      }
      switch (co_await inflight_.wait(prepared[i]->message_id)) {
        case inflight_messages::outcome::durable:
          st[i] = state::done;
          break;
        case inflight_messages::outcome::failed:
          st[i] = state::done;
          out[i] = error{errc::unavailable, "the message log is unavailable; retry"};
          break;
        case inflight_messages::outcome::conflict:
          st[i] = state::done;
          out[i] = error{errc::conflict, "message_id already used with different content"};
          break;
        case inflight_messages::outcome::gone:
          any_gone = true;  // stored or abandoned meanwhile: look again
          break;
      }
    }
    if (!any_gone) break;
  }
  for (std::size_t i = 0; i < n; ++i)
    if (st[i] == state::waiting) out[i] = error{errc::unavailable, "retry"};
  co_return out;
}

task<result<message_with_history>> message_service::get(const principal& who, uuid id) {
  auto m = co_await messages_.get_message(id);
  if (!m) co_return m;
  auto conv = co_await members_.require_member(m->msg.conversation, who.id);
  // Do not reveal that a message exists in someone else's conversation.
  if (!conv) co_return error{errc::not_found, "no such message"};
  co_return m;
}

}  // namespace chat4all
