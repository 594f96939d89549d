/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's one event loop: epoll over fds, plus one-shot timers kept in
 * a list and driven by a single timerfd. Single-threaded; callbacks run
 * from kha_loop_run(). Times are CLOCK_MONOTONIC milliseconds.
 */
#ifndef KHA_LOOP_H
#define KHA_LOOP_H

#include <stdint.h>
#include <stdbool.h>

struct kha_loop;
typedef void (*kha_fd_cb)(struct kha_loop *l, int fd, uint32_t events,
			  void *arg);
typedef void (*kha_timer_cb)(struct kha_loop *l, void *arg);

struct kha_timer {
	uint64_t when_ms; /* absolute, monotonic */
	kha_timer_cb cb;
	void *arg;
	bool armed;
	struct kha_timer *next;
};

struct kha_loop *kha_loop_new(void);
void kha_loop_free(struct kha_loop *l);
uint64_t kha_now_ms(void);

/* events: EPOLLIN / EPOLLOUT ...; add replaces an existing registration */
int kha_loop_add_fd(struct kha_loop *l, int fd, uint32_t events, kha_fd_cb cb,
		    void *arg);
int kha_loop_mod_fd(struct kha_loop *l, int fd, uint32_t events);
void kha_loop_del_fd(struct kha_loop *l, int fd);

/* Timers are owned by the caller; arming an armed timer re-arms it. */
void kha_timer_init(struct kha_timer *t, kha_timer_cb cb, void *arg);
void kha_timer_arm_at(struct kha_loop *l, struct kha_timer *t, uint64_t when);
void kha_timer_arm_in(struct kha_loop *l, struct kha_timer *t, uint64_t ms);
void kha_timer_cancel(struct kha_loop *l, struct kha_timer *t);

/* Runs until kha_loop_stop(); returns 0 or -errno. */
int kha_loop_run(struct kha_loop *l);
void kha_loop_stop(struct kha_loop *l);

#endif /* KHA_LOOP_H */
