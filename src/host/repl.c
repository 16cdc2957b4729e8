/* The interactive loop of the `hcs` host: readline line editing, a history
 * file, tab completion of Lua names (hcs.layer.<TAB>), `=expr` and bare
 * expressions printed with hcs.util.pretty, multi-line input as in lua.c.
 * readline (and the terminfo library under it) is dlopen()ed here, for a
 * terminal only, so the commands that never start a REPL do not load it;
 * without it, or on piped input, the REPL reads plain lines.
 * Ctrl-C at the prompt cancels the line being typed (as Python's REPL);
 * while a line runs it interrupts it (main.c).  Each line is appended to
 * the history file as it is entered, so a killed REPL loses none. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "host.h"

#define PROMPT "hcs> "
#define PROMPT2 "hcs>> "
#define EOFMARK "<eof>"

static lua_State *replL;
static char history_path[4096];

/* The readline entry points and variables the REPL uses, typed from the
 * library's own header. */
static struct {
  __typeof__(&readline) readline;
  __typeof__(&add_history) add_history;
  __typeof__(&read_history) read_history;
  __typeof__(&write_history) write_history;
  __typeof__(&append_history) append_history;
  __typeof__(&rl_replace_line) replace_line;
  __typeof__(&rl_getc_function) getc_function;
  __typeof__(&rl_catch_signals) catch_signals;
  __typeof__(&history_truncate_file) history_truncate_file;
  __typeof__(&rl_completion_matches) completion_matches;
  __typeof__(&rl_completion_append_character) completion_append_character;
  __typeof__(&rl_readline_name) readline_name;
  __typeof__(&rl_attempted_completion_function) attempted_completion_function;
  __typeof__(&rl_completer_word_break_characters) completer_word_break_characters;
} rl;

static bool load_readline(void) {
  void *h = dlopen(HCS_SONAME_READLINE, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return false;
#define SYM(field, name) (rl.field = (__typeof__(rl.field))dlsym(h, name)) != NULL
  if (SYM(readline, "readline") && SYM(add_history, "add_history") && SYM(read_history, "read_history") &&
      SYM(write_history, "write_history") && SYM(history_truncate_file, "history_truncate_file") &&
      SYM(append_history, "append_history") && SYM(replace_line, "rl_replace_line") &&
      SYM(getc_function, "rl_getc_function") && SYM(catch_signals, "rl_catch_signals") &&
      SYM(completion_matches, "rl_completion_matches") &&
      SYM(completion_append_character, "rl_completion_append_character") && SYM(readline_name, "rl_readline_name") &&
      SYM(attempted_completion_function, "rl_attempted_completion_function") &&
      SYM(completer_word_break_characters, "rl_completer_word_break_characters"))
    return true;
#undef SYM
  memset(&rl, 0, sizeof rl);
  dlclose(h);
  return false;
}

/* Ctrl-C at the prompt: the handler only notes it (no SA_RESTART, so the
 * read in progress fails with EINTR); the reader then drops the line. */
static volatile sig_atomic_t prompt_sigint;
static bool line_cancelled;

static void on_prompt_sigint(int sig) {
  (void)sig;
  prompt_sigint = 1;
}

/* readline's character source: read(2), so a Ctrl-C ends the line here,
 * outside the signal handler, where readline's state may be touched. */
static int getc_cancellable(FILE *f) {
  for (;;) {
    unsigned char c;
    ssize_t n = read(fileno(f), &c, 1);
    if (n == 1) return c;
    if (n == 0) return EOF;
    if (errno != EINTR) return EOF;
    if (prompt_sigint) {
      prompt_sigint = 0;
      line_cancelled = true;
      rl.replace_line("", 0);
      return '\n';
    }
  }
}

/* A line from stdin without readline (malloc'd, no newline), NULL at EOF. */
static char *plain_readline(const char *prompt) {
  fputs(prompt, stdout);
  fflush(stdout);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) {
    bool cancelled = errno == EINTR && prompt_sigint;
    free(line);
    clearerr(stdin);
    if (cancelled) {
      prompt_sigint = 0;
      line_cancelled = true;
      return strdup("");
    }
    return NULL;
  }
  if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
  return line;
}

/* Read one line with Ctrl-C cancelling it instead of killing the REPL. */
static char *read_line(const char *prompt) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_prompt_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  prompt_sigint = 0;
  char *b = rl.readline ? rl.readline(prompt) : plain_readline(prompt);
  sigaction(SIGINT, &old, NULL);
  return b;
}

static void remember(const char *line) {
  if (!rl.add_history) return;
  rl.add_history(line);
  /* Appended now, not at exit: a REPL that is killed keeps its history. */
  if (history_path[0]) rl.append_history(1, history_path);
}

/* --- completion ---------------------------------------------------------- */

/* Push the table named by `path` (e.g. "hcs.layer"), or nil. */
static void push_path(lua_State *L, const char *path, size_t len) {
  lua_pushglobaltable(L);
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && path[i] != '.' && path[i] != ':') continue;
    if (i == start) { /* empty component */
      lua_pop(L, 1);
      lua_pushnil(L);
      return;
    }
    if (!lua_istable(L, -1) && !lua_isuserdata(L, -1)) {
      lua_pop(L, 1);
      lua_pushnil(L);
      return;
    }
    lua_pushlstring(L, path + start, i - start);
    if (lua_istable(L, -2))
      lua_rawget(L, -2);
    else
      lua_gettable(L, -2);
    lua_remove(L, -2);
    start = i + 1;
  }
}

static char **candidates;
static size_t n_candidates, cap_candidates;

static void add_candidate(char *s) {
  if (n_candidates + 1 >= cap_candidates) {
    cap_candidates = cap_candidates ? cap_candidates * 2 : 32;
    candidates = realloc(candidates, cap_candidates * sizeof *candidates);
  }
  candidates[n_candidates++] = s;
}

/* Collect keys of the table on top (and of its __index table, one level,
 * which is where handle methods live) that start with `prefix`. */
static void collect_keys(lua_State *L, const char *head, size_t headlen, const char *prefix) {
  size_t plen = strlen(prefix);
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      if (!lua_getmetatable(L, -1)) break;
      lua_getfield(L, -1, "__index");
      lua_remove(L, -2);
      if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        break;
      }
    } else if (!lua_istable(L, -1)) {
      continue;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, -2);
        if (strncmp(k, prefix, plen) == 0 && k[0] != '_') {
          const char *suffix = lua_istable(L, -1) ? "." : lua_isfunction(L, -1) ? "(" : "";
          char *c = NULL;
          if (asprintf(&c, "%.*s%s%s", (int)headlen, head, k, suffix) >= 0) add_candidate(c);
        }
      }
      lua_pop(L, 1);
    }
    if (pass == 1) lua_pop(L, 1);
  }
}

static char *generator(const char *text, int state) {
  static size_t next;
  if (state == 0) {
    for (size_t i = 0; i < n_candidates; i++)
      free(candidates[i]);
    n_candidates = 0;
    next = 0;
    const char *sep = NULL;
    for (const char *p = text; *p; p++)
      if (*p == '.' || *p == ':') sep = p;
    lua_State *L = replL;
    int top = lua_gettop(L);
    if (sep) {
      push_path(L, text, (size_t)(sep - text));
      if (!lua_isnil(L, -1)) collect_keys(L, text, (size_t)(sep - text + 1), sep + 1);
    } else {
      lua_pushglobaltable(L);
      collect_keys(L, "", 0, text);
      static const char *const keywords[] = {"and",      "break",  "do",   "else", "elseif", "end",  "false", "for",
                                             "function", "goto",   "if",   "in",   "local",  "nil",  "not",   "or",
                                             "repeat",   "return", "then", "true", "until",  "while"};
      for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strncmp(keywords[i], text, strlen(text)) == 0) add_candidate(strdup(keywords[i]));
    }
    lua_settop(L, top);
  }
  return next < n_candidates ? strdup(candidates[next++]) : NULL;
}

static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  *rl.completion_append_character = '\0';
  return rl.completion_matches(text, generator);
}

/* --- reading and evaluating --------------------------------------------- */

static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    size_t mark = sizeof(EOFMARK) - 1;
    if (lmsg >= mark && strcmp(msg + lmsg - mark, EOFMARK) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

static int pushline(lua_State *L, int firstline) {
  const char *prompt = firstline ? PROMPT : PROMPT2;
  char *b = read_line(prompt);
  if (b == NULL) return 0;
  if (line_cancelled) {
    free(b);
    return -1;
  }
  size_t l = strlen(b);
  if (firstline && b[0] == '=')
    lua_pushfstring(L, "return %s", b + 1);
  else
    lua_pushlstring(L, b, l);
  free(b);
  return 1;
}

static int addreturn(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK) {
    lua_remove(L, -2);
    if (line[0] != '\0') remember(line);
  } else {
    lua_pop(L, 2);
  }
  return status;
}

/* LUA_OK, an error status, or -2 when Ctrl-C dropped the chunk. */
static int multiline(lua_State *L) {
  for (;;) {
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, line, len, "=stdin");
    if (!incomplete(L, status)) {
      remember(line);
      return status;
    }
    int more = pushline(L, 0);
    if (more < 0) return -2;
    if (more == 0) {
      remember(line);
      return status;
    }
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

/* A chunk to run (status LUA_OK or a syntax error), -1 at end of input,
 * -2 when Ctrl-C cancelled the line. */
static int loadline(lua_State *L) {
  lua_settop(L, 0);
  line_cancelled = false;
  int got = pushline(L, 1);
  if (got < 0) return -2;
  if (got == 0) return -1;
  int status = addreturn(L);
  if (status != LUA_OK) status = multiline(L);
  if (status == -2) {
    lua_settop(L, 0);
    return -2;
  }
  lua_remove(L, 1);
  return status;
}

/* Print results through hcs.util.pretty when it loads, else print(). */
static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "hcs.util.pretty");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    lua_getfield(L, -1, "print");
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
    lua_getglobal(L, "print");
  }
  lua_insert(L, 1);
  if (lua_pcall(L, n, 0, 0) != LUA_OK)
    fprintf(stderr, "%s: error calling print (%s)\n", hcs_progname, lua_tostring(L, -1));
}

void hcs_host_repl(lua_State *L) {
  replL = L;
  /* Line editing is for terminals: piped input is read as plain lines. */
  if (isatty(STDIN_FILENO) && load_readline()) {
    *rl.readline_name = "hcs";
    *rl.attempted_completion_function = complete;
    *rl.completer_word_break_characters = " \t\n\"'`@$><=;|&{(,+-*/%^#~[]";
    *rl.catch_signals = 0; /* SIGINT is ours: it cancels the line */
    *rl.getc_function = getc_cancellable;
  }
  const char *home = getenv("HOME");
  const char *hist = getenv("HCS_HISTORY");
  if (hist && *hist)
    snprintf(history_path, sizeof history_path, "%s", hist);
  else if (home)
    snprintf(history_path, sizeof history_path, "%s/.hcs_history", home);
  if (history_path[0] && rl.read_history && rl.read_history(history_path) == ENOENT) {
    /* append_history needs the file to exist */
    rl.write_history(history_path);
  }

  /* `hcs` is available as a global in the REPL for convenience. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "hcs");
  if (hcs_host_docall(L, 1, 1) == LUA_OK) {
    lua_setglobal(L, "hcs");
    /* Subsystems load lazily; load them all here so Tab completion sees them. */
    if (luaL_loadstring(L, "for _, n in ipairs(hcs.subsystems or {}) do local _ = hcs[n] end") == LUA_OK)
      hcs_host_report(L, hcs_host_docall(L, 0, 0));
    else
      lua_pop(L, 1);
  } else {
    hcs_host_report(L, LUA_ERRRUN);
  }

  int status;
  while ((status = loadline(L)) != -1) {
    if (status == -2) { /* Ctrl-C: the line is dropped, a new prompt */
      fputs("^C\n", stdout);
      fflush(stdout);
      continue;
    }
    if (status == LUA_OK) status = hcs_host_docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK)
      print_results(L);
    else
      hcs_host_report(L, status);
  }
  lua_settop(L, 0);
  fputc('\n', stdout);
  fflush(stdout);
  if (history_path[0] && rl.history_truncate_file) rl.history_truncate_file(history_path, 1000);
  for (size_t i = 0; i < n_candidates; i++)
    free(candidates[i]);
  free(candidates);
  candidates = NULL;
  n_candidates = cap_candidates = 0;
}
