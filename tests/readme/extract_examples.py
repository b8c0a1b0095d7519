#!/usr/bin/env python3
"""Writes the ```cpp blocks of README.md to OUT_DIR, so that the build compiles
every example as it is written there: each block that is a translation unit
to readme_example_N.cpp, the fragments together to readme_fragments.cpp.

  extract_examples.py README.md OUT_DIR

A block with an #include is a translation unit as it stands. Any other block
is a fragment: it is compiled as the body of a coroutine that has `loop`
(loupe::loop&) and `app` (loupe::application&), after the code of an HTML
comment `<!-- example context: ... -->` on the line before the fence, which
declares what else the fragment uses (`<!-- example context: std::string u1; -->`).
Prints the files written, one per line; exits 1 when a fragment has no
example-context comment (it would not say what it needs) or no block is found.
"""
import pathlib
import re
import sys

FRAGMENTS = """// Generated from README.md by tests/readme/extract_examples.py: do not edit.
#include <loupe/runtime.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>

#include <string>
#include <vector>
"""

FRAGMENT = """
// README.md line {line}
namespace readme_example_{n} {{
using namespace std::chrono_literals;
{context}
[[maybe_unused]] loupe::awaitable<void> body([[maybe_unused]] loupe::loop& loop,
                                            [[maybe_unused]] loupe::application& app) {{
#line {first} "{readme}"
{code}
  co_return;
}}
}}  // namespace readme_example_{n}
"""

UNIT = """// Generated from README.md line {line} by tests/readme/extract_examples.py: do not edit.
#line {first} "{readme}"
{code}
"""


def write(path, text):
    if not path.exists() or path.read_text() != text:  # unchanged files keep their timestamps
        path.write_text(text)
    return str(path)


def main():
    readme, out = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    lines = readme.read_text().splitlines()
    i, n, errors, written, fragments = 0, 0, [], [], []
    while i < len(lines):
        if lines[i].strip() != "```cpp":
            i += 1
            continue
        fence = i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        code = "\n".join(lines[fence + 1:j])
        n += 1
        context = None
        if fence > 0:
            m = re.match(r"\s*<!--\s*example context:(.*)-->\s*$", lines[fence - 1])
            if m:
                context = m.group(1).strip()
        args = dict(line=fence + 1, first=fence + 2, readme=readme, n=n, code=code, context=context or "")
        if re.search(r"^\s*#include", code, re.M):
            written.append(write(out / ("readme_example_%d.cpp" % n), UNIT.format(**args)))
        elif context is None:
            errors.append("README.md:%d: a fragment without an '<!-- example context: ... -->' line before it" %
                          (fence + 1))
        else:
            fragments.append(FRAGMENT.format(**args))
        i = j + 1
    if fragments:
        written.append(write(out / "readme_fragments.cpp", FRAGMENTS + "".join(fragments)))
    for stale in out.glob("readme_*.cpp"):
        if str(stale) not in written:
            stale.unlink()
    if n == 0:
        errors.append("README.md: no ```cpp block")
    for e in errors:
        print(e, file=sys.stderr)
    print("\n".join(written))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
