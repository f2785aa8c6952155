#pragma once
// Use cases for conversations: create (member rules of SPEC §2), list, history, mark read.
// Thread-safe; coroutines that never block.

#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "domain/membership_cache.hpp"
#include "domain/ports/fanout.hpp"
#include "domain/ports/store.hpp"

namespace chat4all {

struct create_conversation_request {
  conversation_type type = conversation_type::private_chat;
  std::vector<user_id> member_ids;
  std::string name;
  std::string description;
};

class conversation_service {
 public:
  conversation_service(user_store& users, conversation_store& convs, message_store& messages,
                       membership_cache& members, fanout& fan, const clock& clk,
                       limits_config limits);

  // invalid_input: member count out of range for the type, unknown user ids (listed in
  // details), name > 100 chars, description > 1000 chars. created = false when an
  // existing private conversation was returned.
  task<result<conversation_store::create_outcome>> create(const principal& who,
                                                          create_conversation_request req);
  task<result<page<conversation_summary>>> list(const principal& who, int limit, int offset);
  // not_found / forbidden for an unknown conversation / a non-member.
  task<result<history_page>> history(const principal& who, history_query q);
  task<result<read_mark_result>> mark_read(const principal& who, conversation_id conv,
                                           std::optional<seq_t> up_to);

  // Cluster mode with the outbox: `conversation.created`, `conversation.read` and READ
  // statuses are committed by the store with their change (transactional outbox) and reach
  // the fan-out through the relay and the forwarder, instead of being published here after
  // the commit (where a crash in between would lose them). Call before serving.
  void events_through_store(bool on) noexcept { events_through_store_ = on; }

 private:
  void publish(change_events events);

  user_store& users_;
  conversation_store& convs_;
  message_store& messages_;
  membership_cache& members_;
  fanout& fanout_;
  const clock& clock_;
  limits_config limits_;
  bool events_through_store_ = false;
};

}  // namespace chat4all
