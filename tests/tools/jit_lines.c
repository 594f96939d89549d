// SPDX-License-Identifier: GPL-2.0
/*
 * jit_lines: where each source line of a loaded BPF program starts in its
 * JITed code, for turning perf samples (symbol+offset) into source lines
 * on a bpftool built without a disassembler (scripts/bench.sh,
 * BENCH_PROFILE=lines).
 *
 *   jit_lines [-w SECONDS] NAME   the first loaded program called NAME
 *                                 (e.g. xdp_lb), waiting for it to load
 *
 * Prints "tag TAG" (the main function's), then for each function of the
 * program a line "func NAME" (perf calls it bpf_prog_<tag>_<NAME>) and one
 * line per line_info record in it: "OFFSET FILE:LINE SOURCE", OFFSET in
 * hex from the function's start.
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int find_prog(const char *name)
{
	__u32 id = 0;

	while (!bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    !strcmp(info.name, name))
			return fd;
		close(fd);
	}
	return -ENOENT;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int main(int argc, char **argv)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), nfunc, nline, i, f;
	struct bpf_func_info *funcs;
	struct bpf_line_info *lines;
	__u64 *ksyms, *jlines;
	struct btf *btf;
	int fd, wait_s = 0, tenths = 0;
	const char *name;

	if (argc == 4 && !strcmp(argv[1], "-w")) {
		wait_s = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: jit_lines [-w SECONDS] PROG_NAME\n");
		return 2;
	}
	name = argv[1];
	while ((fd = find_prog(name)) < 0 && tenths++ < wait_s * 10)
		usleep(100000);
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		fprintf(stderr, "jit_lines: no loaded program %s\n", name);
		return 1;
	}
	/*
	 * A program whose verification is still running has no id yet, so
	 * one that is listed is complete.
	 */
	nfunc = info.nr_jited_ksyms;
	nline = info.nr_jited_line_info;
	if (!nline || info.nr_line_info != nline || !info.btf_id ||
	    info.nr_func_info != nfunc) {
		fprintf(stderr, "jit_lines: %s has no line info\n", name);
		return 1;
	}
	ksyms = calloc(nfunc, sizeof(*ksyms));
	jlines = calloc(nline, sizeof(*jlines));
	lines = calloc(nline, sizeof(*lines));
	funcs = calloc(nfunc, sizeof(*funcs));
	if (!ksyms || !jlines || !lines || !funcs)
		return 1;
	memset(&info, 0, sizeof(info));
	info.nr_jited_ksyms = nfunc;
	info.jited_ksyms = (uintptr_t)ksyms;
	info.nr_jited_line_info = nline;
	info.jited_line_info_rec_size = sizeof(__u64);
	info.jited_line_info = (uintptr_t)jlines;
	info.nr_line_info = nline;
	info.line_info_rec_size = sizeof(*lines);
	info.line_info = (uintptr_t)lines;
	info.nr_func_info = nfunc;
	info.func_info_rec_size = sizeof(*funcs);
	info.func_info = (uintptr_t)funcs;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		perror("jit_lines: prog info");
		return 1;
	}
	btf = btf__load_from_kernel_by_id(info.btf_id);
	if (!btf) {
		perror("jit_lines: program BTF");
		return 1;
	}
	printf("tag ");
	for (i = 0; i < BPF_TAG_SIZE; i++)
		printf("%02x", info.tag[i]);
	printf("\n");
	/* a line belongs to the last function starting at or before it */
	for (f = 0; f < nfunc; f++) {
		const struct btf_type *t = btf__type_by_id(btf, funcs[f].type_id);
		__u32 end = f + 1 < nfunc ? funcs[f + 1].insn_off : UINT32_MAX;

		printf("func %s\n", t ? btf__name_by_offset(btf, t->name_off) : "?");
		for (i = 0; i < nline; i++) {
			const char *file, *src;

			if (lines[i].insn_off < funcs[f].insn_off ||
			    lines[i].insn_off >= end)
				continue;
			file = btf__name_by_offset(btf, lines[i].file_name_off);
			src = btf__name_by_offset(btf, lines[i].line_off);
			printf("%llx %s:%u %s\n",
			       (unsigned long long)(jlines[i] - ksyms[f]),
			       file ? base_name(file) : "?",
			       BPF_LINE_INFO_LINE_NUM(lines[i].line_col),
			       src ? src : "");
		}
	}
	btf__free(btf);
	free(funcs);
	free(lines);
	free(jlines);
	free(ksyms);
	close(fd);
	return 0;
}
