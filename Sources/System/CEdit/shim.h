#include <stdio.h>
#include <histedit.h>
// el_set/el_get are variadic: Swift cannot call them, so wrap the calls we need.
static inline int tb_el_set_prompt(EditLine *e, char *(*fn)(EditLine *)) { return el_set(e, EL_PROMPT, fn); }
static inline int tb_el_set_editor(EditLine *e, const char *mode) { return el_set(e, EL_EDITOR, mode); }
static inline int tb_el_set_history(EditLine *e, History *h) { return el_set(e, EL_HIST, history, h); }
static inline int tb_history_set_size(History *h, HistEvent *ev, int n) { return history(h, ev, H_SETSIZE, n); }
static inline int tb_history_enter(History *h, HistEvent *ev, const char *line) { return history(h, ev, H_ENTER, line); }
static inline int tb_history_load(History *h, HistEvent *ev, const char *path) { return history(h, ev, H_LOAD, path); }
static inline int tb_history_save(History *h, HistEvent *ev, const char *path) { return history(h, ev, H_SAVE, path); }
