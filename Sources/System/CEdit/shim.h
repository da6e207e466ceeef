#include <stdio.h>
#include <histedit.h>
// el_set/el_get and history() are variadic: Swift cannot call them, so each call we need is a
// small wrapper here.
static inline int tb_el_set_prompt(EditLine *e, char *(*fn)(EditLine *)) { return el_set(e, EL_PROMPT, fn); }
static inline int tb_el_set_editor(EditLine *e, const char *mode) { return el_set(e, EL_EDITOR, mode); }
static inline int tb_el_set_history(EditLine *e, History *h) { return el_set(e, EL_HIST, history, h); }
/// Binds TAB to a completion function (EL_ADDFN + EL_BIND).
static inline int tb_el_bind_tab(EditLine *e, unsigned char (*fn)(EditLine *, int)) {
    if (el_set(e, EL_ADDFN, "tb-complete", "complete a name", fn) != 0) return -1;
    return el_set(e, EL_BIND, "^I", "tb-complete", NULL);
}
/// Reads the editor's settings file (~/.editrc), as other libedit programs do.
static inline int tb_el_source_default(EditLine *e) { return el_source(e, NULL); }
static inline int tb_history_set_size(History *h, HistEvent *ev, int n) { return history(h, ev, H_SETSIZE, n); }
static inline int tb_history_set_unique(History *h, HistEvent *ev) { return history(h, ev, H_SETUNIQUE, 1); }
static inline int tb_history_enter(History *h, HistEvent *ev, const char *line) { return history(h, ev, H_ENTER, line); }
static inline int tb_history_load(History *h, HistEvent *ev, const char *path) { return history(h, ev, H_LOAD, path); }
static inline int tb_history_save(History *h, HistEvent *ev, const char *path) { return history(h, ev, H_SAVE, path); }
static const unsigned char TB_CC_REFRESH = CC_REFRESH;
static const unsigned char TB_CC_ERROR = CC_ERROR;
static const unsigned char TB_CC_REDISPLAY = CC_REDISPLAY;
/// Replaces libedit's character reader (EL_GETCFN), so that Ctrl-C can end a read.
static inline int tb_el_set_getc(EditLine *e, int (*fn)(EditLine *, wchar_t *)) { return el_set(e, EL_GETCFN, fn); }
