#include "pipeline/log_channel_dispatch.hpp"

#include <map>

#include "domain/message_codec.hpp"

namespace chat4all {

boost::asio::awaitable<result<void>> log_channel_dispatch::hand_off(
    const std::vector<message>& stored) {
  std::map<std::string, std::vector<log_record>> by_topic;
  for (const auto& m : stored)
    for (const auto& ch : m.channels)
      by_topic[ch + "_outgoing"].push_back({std::to_string(m.conversation), message_json(m)});
  for (auto& [topic, records] : by_topic)
    if (auto r = co_await log_.append(topic, std::move(records)); !r) co_return r;
  co_return ok;
}

}  // namespace chat4all
