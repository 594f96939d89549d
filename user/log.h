/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One logging family for the daemon and the CLI: one line per event on
 * stderr, `<N>level subsys: message` when stderr is the journal (sd-daemon
 * priority prefix, which journald turns into PRIORITY=), plain otherwise.
 */
#ifndef KHA_LOG_H
#define KHA_LOG_H

#include <stdarg.h>

enum kha_log_level {
	KHA_LOG_ERR = 3,
	KHA_LOG_WARN = 4,
	KHA_LOG_NOTICE = 5,
	KHA_LOG_INFO = 6,
	KHA_LOG_DEBUG = 7,
};

void kha_log_init(int max_level);
void kha_log_quiet_libbpf(int quiet);
void kha_log(int level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kha_vlog(int level, const char *subsys, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define log_err(sub, ...) kha_log(KHA_LOG_ERR, sub, __VA_ARGS__)
#define log_warn(sub, ...) kha_log(KHA_LOG_WARN, sub, __VA_ARGS__)
#define log_notice(sub, ...) kha_log(KHA_LOG_NOTICE, sub, __VA_ARGS__)
#define log_info(sub, ...) kha_log(KHA_LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) kha_log(KHA_LOG_DEBUG, sub, __VA_ARGS__)

#endif /* KHA_LOG_H */
