// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "loop.h"

struct fd_reg {
	int fd;
	kha_fd_cb cb;
	void *arg;
	bool dead;
	struct fd_reg *next;
};

struct kha_loop {
	int epfd;
	int tfd;
	bool stop;
	struct fd_reg *regs;
	struct kha_timer *timers; /* unsorted; armed ones only */
	uint64_t tfd_when;        /* what tfd is set to, 0 = disarmed */
};

uint64_t kha_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct kha_loop *kha_loop_new(void)
{
	struct kha_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->epfd < 0 || l->tfd < 0)
		goto err;
	ev.data.ptr = NULL; /* NULL marks the timerfd */
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev))
		goto err;
	return l;
err:
	kha_loop_free(l);
	return NULL;
}

void kha_loop_free(struct kha_loop *l)
{
	struct fd_reg *r, *n;

	if (!l)
		return;
	for (r = l->regs; r; r = n) {
		n = r->next;
		free(r);
	}
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->tfd >= 0)
		close(l->tfd);
	free(l);
}

static struct fd_reg *find_reg(struct kha_loop *l, int fd)
{
	struct fd_reg *r;

	for (r = l->regs; r; r = r->next)
		if (r->fd == fd && !r->dead)
			return r;
	return NULL;
}

int kha_loop_add_fd(struct kha_loop *l, int fd, uint32_t events, kha_fd_cb cb,
		    void *arg)
{
	struct epoll_event ev = { .events = events };
	struct fd_reg *r = find_reg(l, fd);
	int op = EPOLL_CTL_MOD;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return -ENOMEM;
		r->fd = fd;
		r->next = l->regs;
		l->regs = r;
		op = EPOLL_CTL_ADD;
	}
	r->cb = cb;
	r->arg = arg;
	ev.data.ptr = r;
	if (epoll_ctl(l->epfd, op, fd, &ev)) {
		int err = -errno;

		r->dead = true;
		return err;
	}
	return 0;
}

int kha_loop_mod_fd(struct kha_loop *l, int fd, uint32_t events)
{
	struct fd_reg *r = find_reg(l, fd);
	struct epoll_event ev = { .events = events, .data.ptr = r };

	if (!r)
		return -ENOENT;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
}

void kha_loop_del_fd(struct kha_loop *l, int fd)
{
	struct fd_reg *r = find_reg(l, fd);

	if (!r)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* freed after the current dispatch round; events may still point here */
	r->dead = true;
}

static void reap_regs(struct kha_loop *l)
{
	struct fd_reg **pp = &l->regs, *r;

	while ((r = *pp)) {
		if (r->dead) {
			*pp = r->next;
			free(r);
		} else {
			pp = &r->next;
		}
	}
}

void kha_timer_init(struct kha_timer *t, kha_timer_cb cb, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->cb = cb;
	t->arg = arg;
}

static void unlink_timer(struct kha_loop *l, struct kha_timer *t)
{
	struct kha_timer **pp;

	for (pp = &l->timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->next = NULL;
	t->armed = false;
}

void kha_timer_arm_at(struct kha_loop *l, struct kha_timer *t, uint64_t when)
{
	if (t->armed)
		unlink_timer(l, t);
	t->when_ms = when;
	t->armed = true;
	t->next = l->timers;
	l->timers = t;
}

void kha_timer_arm_in(struct kha_loop *l, struct kha_timer *t, uint64_t ms)
{
	kha_timer_arm_at(l, t, kha_now_ms() + ms);
}

void kha_timer_cancel(struct kha_loop *l, struct kha_timer *t)
{
	if (t->armed)
		unlink_timer(l, t);
}

/* Point the timerfd at the earliest armed timer. */
static void program_tfd(struct kha_loop *l)
{
	struct itimerspec its = {};
	struct kha_timer *t;
	uint64_t first = 0;

	for (t = l->timers; t; t = t->next)
		if (!first || t->when_ms < first)
			first = t->when_ms;
	if (first == l->tfd_when)
		return;
	l->tfd_when = first;
	if (first) {
		its.it_value.tv_sec = first / 1000;
		its.it_value.tv_nsec = (first % 1000) * 1000000;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void run_timers(struct kha_loop *l)
{
	uint64_t now = kha_now_ms();
	struct kha_timer *t;
	bool again = true;

	/* a callback may arm or cancel any timer, so rescan after each one */
	while (again) {
		again = false;
		for (t = l->timers; t; t = t->next) {
			if (t->when_ms <= now) {
				unlink_timer(l, t);
				t->cb(l, t->arg);
				again = true;
				break;
			}
		}
	}
}

int kha_loop_run(struct kha_loop *l)
{
	struct epoll_event evs[64];
	uint64_t exp;
	int i, n;

	l->stop = false;
	while (!l->stop) {
		run_timers(l);
		if (l->stop)
			break;
		program_tfd(l);
		n = epoll_wait(l->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (i = 0; i < n && !l->stop; i++) {
			struct fd_reg *r = evs[i].data.ptr;

			if (!r) {
				if (read(l->tfd, &exp, sizeof(exp)) < 0) {
					/* spurious wake-up: nothing expired */
				}
				l->tfd_when = 0;
				continue;
			}
			if (!r->dead)
				r->cb(l, r->fd, evs[i].events, r->arg);
		}
		reap_regs(l);
	}
	return 0;
}

void kha_loop_stop(struct kha_loop *l)
{
	l->stop = true;
}
