// The per-connection queue policy and the replay/live seam.
#include "ws/send_queue.hpp"

#include <gtest/gtest.h>

#include "ws/resume_seam.hpp"

namespace chat4all::ws {
namespace {

event_ptr ev(std::size_t bytes, seq_t seq = 0) {
  event_info i;
  i.seq = seq;
  return make_event(std::string(bytes, 'x'), i);
}

TEST(ws_send_queue, refuses_what_passes_a_bound_and_keeps_order) {
  send_queue q(3, 1000);
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.push(ev(10, 1)));
  EXPECT_TRUE(q.push(ev(10, 2)));
  EXPECT_TRUE(q.push(ev(10, 3)));
  EXPECT_FALSE(q.push(ev(10, 4)));  // over max_events: nothing added
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.bytes(), 30u);
  EXPECT_EQ(q.pop()->info.seq, 1);
  EXPECT_TRUE(q.push(ev(10, 4)));
  EXPECT_EQ(q.pop()->info.seq, 2);
  EXPECT_EQ(q.pop()->info.seq, 3);
  EXPECT_EQ(q.pop()->info.seq, 4);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(ws_send_queue, push_front_goes_ahead_of_everything_whatever_the_bounds) {
  send_queue q(2, 1000);
  q.push_front(ev(5, 10));  // into an empty queue
  EXPECT_EQ(q.pop()->info.seq, 10);
  EXPECT_TRUE(q.push(ev(10, 1)));
  EXPECT_TRUE(q.push(ev(10, 2)));
  q.push_front(ev(5, 0));  // full: still taken, first
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.bytes(), 25u);
  EXPECT_EQ(q.pop()->info.seq, 0);
  EXPECT_EQ(q.pop()->info.seq, 1);
  EXPECT_TRUE(q.push(ev(10, 3)));
  q.push_front(ev(5, 7));  // after a pop: into the freed slot at the head
  EXPECT_EQ(q.pop()->info.seq, 7);
  EXPECT_EQ(q.pop()->info.seq, 2);
  EXPECT_EQ(q.pop()->info.seq, 3);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(ws_send_queue, byte_bound_and_an_empty_queue_takes_one_large_event) {
  send_queue q(100, 100);
  EXPECT_TRUE(q.push(ev(60)));
  EXPECT_FALSE(q.fits(1, 50));
  EXPECT_FALSE(q.push(ev(50)));
  EXPECT_TRUE(q.push(ev(40)));
  q.pop();
  q.pop();
  EXPECT_TRUE(q.push(ev(500)));  // larger than the bound, but alone: it can go out
  EXPECT_FALSE(q.push(ev(1)));
  EXPECT_EQ(q.clear(), 1u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(ws_send_queue, a_draining_connection_may_hold_a_bounded_burst) {
  send_queue q(2, 1000);
  ASSERT_TRUE(q.push(ev(10)));
  ASSERT_TRUE(q.push(ev(10)));
  EXPECT_FALSE(q.push(ev(10)));  // stalled socket: the bound
  for (std::size_t i = 2; i < 2 * send_queue::burst_factor; ++i)
    EXPECT_TRUE(q.push(ev(10), true)) << i;  // draining: up to burst_factor x the bound
  EXPECT_FALSE(q.push(ev(10), true));
  EXPECT_EQ(q.size(), 2 * send_queue::burst_factor);
  send_queue b(100, 100);
  ASSERT_TRUE(b.push(ev(90)));
  EXPECT_FALSE(b.push(ev(90)));
  EXPECT_TRUE(b.push(ev(90), true));
  EXPECT_TRUE(b.push(ev(90), true));
  EXPECT_TRUE(b.push(ev(90), true));
  EXPECT_FALSE(b.push(ev(90), true));  // 400 bytes at most
}

TEST(ws_send_queue, clear_counts_dropped_events) {
  send_queue q(10, 1 << 20);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(q.push(ev(1)));
  q.pop();
  EXPECT_EQ(q.clear(), 6u);
  EXPECT_TRUE(q.push(ev(1)));
  EXPECT_EQ(q.size(), 1u);
}

using seam = resume_seam<int>;

TEST(ws_resume_seam, buffers_live_events_during_the_replay_and_drops_the_overlap) {
  seam s(5);
  EXPECT_TRUE(s.replaying());
  // Live events that race with the replay: some it also reads from the store.
  EXPECT_EQ(s.on_live(8, 8, 100), seam::verdict::buffered);
  EXPECT_EQ(s.on_live(7, 7, 100), seam::verdict::buffered);
  for (seq_t q = 6; q <= 8; ++q) s.replayed(q);
  EXPECT_EQ(s.on_live(9, 9, 100), seam::verdict::buffered);
  EXPECT_EQ(s.on_live(10, 10, 100), seam::verdict::buffered);
  EXPECT_EQ(s.take(), (std::vector<int>{9, 10}));
  EXPECT_TRUE(s.replaying());
  EXPECT_EQ(s.on_live(11, 11, 100), seam::verdict::buffered);  // while 9, 10 were delivered
  EXPECT_EQ(s.take(), (std::vector<int>{11}));
  EXPECT_TRUE(s.take().empty());
  s.end();
  EXPECT_FALSE(s.replaying());
  EXPECT_EQ(s.last(), 11);
  EXPECT_EQ(s.on_live(11, 11, 100), seam::verdict::drop);  // late duplicate
  EXPECT_EQ(s.on_live(12, 12, 100), seam::verdict::pass);
  EXPECT_EQ(s.on_live(12, 12, 100), seam::verdict::drop);
}

TEST(ws_resume_seam, out_of_order_and_repeated_buffered_events_come_out_once_in_order) {
  seam s(0);
  for (seq_t q : {3, 1, 2, 3, 5, 4, 1}) s.on_live(q, static_cast<int>(q), 100);
  EXPECT_EQ(s.take(), (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(ws_resume_seam, bounded_buffer_and_restart) {
  seam s(0);
  EXPECT_EQ(s.on_live(1, 1, 2), seam::verdict::buffered);
  EXPECT_EQ(s.on_live(2, 2, 2), seam::verdict::buffered);
  EXPECT_EQ(s.on_live(3, 3, 2), seam::verdict::overflow);
  s.restart(10);
  EXPECT_TRUE(s.replaying());
  EXPECT_TRUE(s.take().empty());
  s.end();
  EXPECT_EQ(s.on_live(10, 10, 2), seam::verdict::drop);
  EXPECT_EQ(s.on_live(11, 11, 2), seam::verdict::pass);
}

}  // namespace
}  // namespace chat4all::ws
