#pragma once
// channel_dispatch over the event log: one record per (message, channel) on the topic
// `<channel>_outgoing`, keyed by conversation, which the channel's connector consumes.

#include "domain/ports/channel_dispatch.hpp"
#include "domain/ports/event_log.hpp"

namespace chat4all {

class log_channel_dispatch final : public channel_dispatch {
 public:
  explicit log_channel_dispatch(event_log& log) : log_(log) {}
  boost::asio::awaitable<result<void>> hand_off(const std::vector<message>& stored) override;

 private:
  event_log& log_;
};

}  // namespace chat4all
