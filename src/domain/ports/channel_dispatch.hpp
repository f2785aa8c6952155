#pragma once
// Hand-off point from the router to channel connectors (WhatsApp, Instagram, Telegram,
// Messenger). The default adapter writes one record per channel to the event log topic
// `<channel>_outgoing`, which connectors consume.

#include <boost/asio/awaitable.hpp>

#include <vector>

#include "core/error.hpp"
#include "domain/entities.hpp"

namespace chat4all {

class channel_dispatch {
 public:
  virtual ~channel_dispatch() = default;
  // Durably hands the stored messages' channel copies to the connectors.
  virtual boost::asio::awaitable<result<void>> hand_off(const std::vector<message>& stored) = 0;
};

}  // namespace chat4all
