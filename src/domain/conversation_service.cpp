#include "domain/conversation_service.hpp"

#include <algorithm>

#include "domain/events.hpp"

namespace chat4all {
namespace {
constexpr std::size_t max_name_chars = 100;
constexpr std::size_t max_description_chars = 1000;

std::size_t utf8_chars(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

error invalid(std::string field, std::string reason) {
  error e{errc::invalid_input, field + ": " + reason};
  e.details.push_back({std::move(field), std::move(reason)});
  return e;
}
}  // namespace

conversation_service::conversation_service(user_store& users, conversation_store& convs,
                                           message_store& messages, membership_cache& members,
                                           fanout& fan, const clock& clk, limits_config limits)
    : users_(users),
      convs_(convs),
      messages_(messages),
      members_(members),
      fanout_(fan),
      clock_(clk),
      limits_(limits) {}

task<result<conversation_store::create_outcome>> conversation_service::create(
    const principal& who, create_conversation_request req) {
  auto ids = std::move(req.member_ids);
  ids.push_back(who.id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());

  if (req.type == conversation_type::private_chat && ids.size() != 2)
    co_return invalid("member_ids",
                      "a private conversation has exactly 2 members (you and one other)");
  if (req.type == conversation_type::group &&
      (ids.size() < 3 || ids.size() > static_cast<std::size_t>(limits_.group_max_members)))
    co_return invalid(
        "member_ids",
        "a group has 3 to " + std::to_string(limits_.group_max_members) + " members including you");
  if (utf8_chars(req.name) > max_name_chars) co_return invalid("name", "at most 100 characters");
  if (utf8_chars(req.description) > max_description_chars)
    co_return invalid("description", "at most 1000 characters");

  auto existing = co_await users_.existing_users(ids);
  if (!existing) co_return std::move(existing).err();
  if (existing->size() != ids.size()) {
    error e{errc::invalid_input, "unknown user ids in member_ids"};
    for (auto id : ids)
      if (!std::binary_search(existing->begin(), existing->end(), id))
        e.details.push_back({"member_ids", "unknown user " + std::to_string(id)});
    co_return e;
  }

  const auto now = clock_.now_us();
  auto events = [now](const conversation_store::create_outcome& o) {
    change_events out;
    const auto ev = event_conversation_created(o.conv, now);
    for (auto m : o.conv.member_ids) out.emplace_back(user_channel(m), ev);
    return out;
  };
  auto out = co_await convs_.create_conversation(
      req.type, std::move(req.name), std::move(req.description), std::move(ids), now,
      events_through_store_ ? events_of<conversation_store::create_outcome>(events) : nullptr);
  if (!out) co_return out;
  members_.put(out->conv);
  if (out->created && !events_through_store_) publish(events(*out));
  co_return out;
}

task<result<page<conversation_summary>>> conversation_service::list(const principal& who, int limit,
                                                                    int offset) {
  co_return co_await convs_.list_conversations(who.id, limit, offset);
}

task<result<history_page>> conversation_service::history(const principal& who, history_query q) {
  auto conv = co_await members_.require_member(q.conversation, who.id);
  if (!conv) co_return std::move(conv).err();
  co_return co_await messages_.history(q);
}

task<result<read_mark_result>> conversation_service::mark_read(const principal& who,
                                                               conversation_id conv_id,
                                                               std::optional<seq_t> up_to) {
  if (up_to && *up_to < 0) co_return invalid("up_to_seq", "must be >= 0");
  auto conv = co_await members_.require_member(conv_id, who.id);
  if (!conv) co_return std::move(conv).err();
  const auto now = clock_.now_us();
  const user_id reader = who.id;
  auto events = [now, reader](const read_mark_result& m) {
    change_events out;
    const auto channel = conversation_channel(m.conversation);
    out.emplace_back(channel,
                     event_conversation_read(m.conversation, reader, m.last_read_seq, now));
    for (const auto& id : m.now_read)
      out.emplace_back(channel,
                       event_message_status(id, m.conversation, message_status::read, now));
    return out;
  };
  auto r = co_await convs_.mark_read(
      conv_id, who.id, up_to, now,
      events_through_store_ ? events_of<read_mark_result>(events) : nullptr);
  if (!r) co_return r;
  if (!events_through_store_) publish(events(*r));
  co_return r;
}

void conversation_service::publish(change_events events) {
  for (auto& [channel, payload] : events) fanout_.publish(std::move(channel), std::move(payload));
}

}  // namespace chat4all
