"""Sphinx extension for the course book (loaded through ``_config.yml``).

It provides three things:

``exercise-link`` directive
    Used by every chapter page, once, near its end::

        ```{exercise-link} ch03_backpropagation
        ```

    renders an "Exercise" box that links the exercise notebook(s) of
    ``exercises/ch03_backpropagation/`` as downloads (Sphinx copies them into
    ``_build/html/_downloads/``), this chapter's own notebook as a download, and
    the student guide. An assignment with no released notebook is a build
    warning, so under ``-W`` a broken exercise link fails the build. Optional
    directive content is a sentence or two describing the exercise; it is
    rendered in the box.

``chapter-map`` directive
    Used once, in the intro. Renders a table of the chapters listed under the
    ``Chapters`` part of ``_toc.yml`` (in toc order): the chapter, links to its
    sections, and its exercise (from the chapter's ``exercise-link``). The table
    follows the toc, so adding a chapter to ``_toc.yml`` is all it takes. Content
    of the directive (optional) is shown while no chapter is in the toc yet.

Offline MathJax 3
    ``mathjax_path`` in ``_config.yml`` names ``mathjax/tex-mml-chtml.js``
    (relative to ``_static``). After every HTML-format build (html, singlehtml)
    this extension copies that component and what it loads lazily (output fonts,
    TeX extensions, menu, accessibility) from the installed
    ``django-static-mathjax`` package into ``_static/mathjax``. The repository
    does not carry MathJax; the build never touches the network.

Exercises in the site
    After an HTML build the released exercise folders that chapters link
    (``exercises/<assignment>/``) are copied to ``_build/html/exercises/``, so
    the site mirrors the repository: the exercises' links back to the book
    (``../../book/<chapter>.html#<section>``) resolve in the published site just
    as the chapters' links to the exercises do.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

#: Files of the MathJax es5 distribution that the book serves, relative to es5/.
#: ``tex-mml-chtml.js`` is the combined component; the rest is loaded on demand
#: (fonts by the CommonHTML output, ``\require``/autoloaded TeX packages, the
#: context menu's accessibility and speech features).
MATHJAX_PARTS = (
    "tex-mml-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "input/mml",
    "ui",
    "a11y",
    "sre",
    "adaptors",
)

_ASSIGNMENT = re.compile(r"^ch\d{2}_[a-z0-9_]+$")
_CHAPTER_NUMBER = re.compile(r"^\s*(\d+)\.\s*")


class chapter_map_placeholder(nodes.General, nodes.Element):
    """Replaced by the chapter table once every page has been read."""


# ---------------------------------------------------------------------------
# exercise-link


class ExerciseLink(SphinxDirective):
    """``{exercise-link} chNN_topic``: link a chapter to its exercise notebook."""

    required_arguments = 1
    optional_arguments = 0
    has_content = True
    option_spec = {"title": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        assignment = self.arguments[0].strip()
        if not _ASSIGNMENT.match(assignment):
            raise self.error(
                f"exercise-link: assignment must look like 'chNN_topic' "
                f"(the folder name under exercises/), got {assignment!r}"
            )
        env = self.env
        exercises_dir = Path(env.srcdir) / env.config.course_exercises_dir / assignment
        notebooks = sorted(exercises_dir.glob("*.ipynb"))
        if not notebooks:
            logger.warning(
                "exercise-link: no exercise notebook in %s (release it with "
                "`python -m autograder release`)",
                exercises_dir,
                location=self.get_location(),
                type="course",
                subtype="exercise",
            )
            # re-read this page (and warn again) until the release exists
            env.note_dependency(str(exercises_dir / f"{assignment}.ipynb"))
        env.course_exercises.setdefault(env.docname, []).append(assignment)

        title = self.options.get("title") or "Exercise"
        box = nodes.admonition("", classes=["course-exercise"])
        box["ids"].append(_exercise_anchor(assignment))
        self.set_source_info(box)
        box += nodes.title("", title)

        if self.content:
            self.state.nested_parse(self.content, self.content_offset, box)

        # One paragraph per link: the exercise notebook(s), this chapter's own
        # notebook, and how to work on it.
        srcdir = Path(env.srcdir)
        for nb in notebooks:
            rel = PurePosixPath(nb.relative_to(srcdir).as_posix())
            para = nodes.paragraph("", "", classes=["course-exercise-download"])
            para += nodes.Text("Exercise notebook: ")
            para += _download(f"/{rel}", nb.name)
            para += nodes.Text(f" (assignment {assignment})." if nb.stem != assignment else ".")
            box += para

        source = Path(env.doc2path(env.docname))
        if source.suffix == ".ipynb":
            rel = PurePosixPath(source.relative_to(srcdir).as_posix())
            para = nodes.paragraph("", "", classes=["course-chapter-download"])
            para += nodes.Text("This chapter as a notebook: ")
            para += _download(f"/{rel}", source.name)
            para += nodes.Text(".")
            box += para

        guide = env.config.course_student_guide
        para = nodes.paragraph()
        para += nodes.Text("Open the exercise in JupyterLab, run its public tests, and check your work with ")
        notebook = notebooks[0].name if notebooks else assignment + ".ipynb"
        exercises = env.config.course_exercises_dir.strip("/")
        para += nodes.literal("", f"python -m autograder check {exercises}/{assignment}/{notebook}")
        if guide and guide in env.found_docs:
            para += nodes.Text(" (see the ")
            ref = addnodes.pending_xref(
                "", refdomain="std", reftype="doc", reftarget="/" + guide,
                refexplicit=True, refwarn=True,
            )
            ref += nodes.inline("", "student guide")
            para += ref
            para += nodes.Text(").")
        else:
            para += nodes.Text(".")
        box += para
        return [box]


def _exercise_anchor(assignment: str) -> str:
    return "exercise-" + assignment.replace("_", "-")


def _download(target: str, text: str) -> addnodes.download_reference:
    """A download link; Sphinx's asset collector copies ``target`` into _downloads."""
    ref = addnodes.download_reference("", "", reftarget=target, refexplicit=True, refwarn=True)
    ref += nodes.literal("", text)
    return ref


# ---------------------------------------------------------------------------
# chapter-map


class ChapterMap(SphinxDirective):
    """``{chapter-map}``: a table of the toc's chapters (filled after reading)."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        node = chapter_map_placeholder()
        self.set_source_info(node)
        if self.content:
            fallback = nodes.container(classes=["course-chapter-map-fallback"])
            self.state.nested_parse(self.content, self.content_offset, fallback)
            node += fallback
        self.env.course_chapter_maps.add(self.env.docname)
        return [node]


def toc_chapters(env) -> list[str]:
    """Docnames of the ``Chapters`` part of _toc.yml, in order."""
    site_map = getattr(env, "external_site_map", None)
    if site_map is None:
        return []
    caption = env.config.course_chapters_caption
    suffixes = tuple(env.config.source_suffix)
    chapters = []
    for subtree in site_map.root.subtrees:
        if subtree.caption != caption:
            continue
        for item in subtree.items:
            if isinstance(item, str):
                name = str(item)
                for suffix in suffixes:
                    if name.endswith(suffix):
                        name = name[: -len(suffix)]
                chapters.append(name)
    return chapters


class ChapterMapTransform(SphinxPostTransform):
    """Replace each placeholder by the chapter table (all titles are known now)."""

    default_priority = 5  # before pending_xref resolution (10)

    def run(self, **kwargs) -> None:
        for node in list(self.document.findall(chapter_map_placeholder)):
            chapters = [d for d in toc_chapters(self.env) if d in self.env.titles]
            if not chapters:
                node.replace_self(node.children[0].children if node.children else [])
                continue
            node.replace_self(self._table(chapters))

    def _table(self, chapters: list[str]) -> nodes.table:
        env = self.env
        table = nodes.table(classes=["course-chapter-map"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (28, 52, 20):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        head += _row([nodes.Text("Chapter")], [nodes.Text("What's inside")], [nodes.Text("Exercise")])
        body = nodes.tbody()
        group += body
        for number, docname in enumerate(chapters, start=1):
            title = env.titles[docname].astext()
            match = _CHAPTER_NUMBER.match(title)
            if match:
                number, title = int(match.group(1)), title[match.end():]
            chapter_cell = [nodes.inline("", f"{number}", classes=["course-chapter-number"]), nodes.Text(" ")]
            chapter_cell.append(self._link(docname, None, title))

            sections = []
            toc = env.tocs.get(docname)
            for ref in _section_refs(toc):
                if sections:
                    sections.append(nodes.Text(" · "))
                sections.append(self._link(docname, ref["anchorname"].lstrip("#"), ref.astext()))
            exercise = []
            for assignment in env.course_exercises.get(docname, []):
                link = self._link(docname, _exercise_anchor(assignment), "")
                link += nodes.inline("", assignment, classes=["course-assignment"])
                exercise.append(link)
            body += _row(chapter_cell, sections or [nodes.Text("")], exercise or [nodes.Text("")])
        return table

    def _link(self, docname: str, anchor: str | None, text: str) -> nodes.reference:
        """A link from the current page to ``docname`` (optionally ``#anchor``)."""
        uri = self.app.builder.get_relative_uri(self.env.docname, docname)
        if anchor:
            uri = uri.split("#")[0] + "#" + anchor
        return nodes.reference("", text, internal=True, refuri=uri)


def _section_refs(toc) -> list[nodes.reference]:
    """References to a page's sections one level below its title (local toc)."""
    refs = []
    if toc is None:
        return refs
    # bullet_list > list_item (page title) > [compact_paragraph, bullet_list > list_item ...]
    for top in toc.children:
        for sub in top.children:
            if isinstance(sub, nodes.bullet_list):
                for item in sub.children:
                    ref = next(iter(item.findall(nodes.reference)), None)
                    if ref is not None:
                        refs.append(ref)
    return refs


def _row(*cells) -> nodes.row:
    row = nodes.row()
    for content in cells:
        entry = nodes.entry()
        para = nodes.paragraph()
        para.extend(content)
        entry += para
        row += entry
    return row


# ---------------------------------------------------------------------------
# environment bookkeeping


def _init_env(app, env, docnames) -> None:
    if not hasattr(env, "course_exercises"):
        env.course_exercises = {}
    if not hasattr(env, "course_chapter_maps"):
        env.course_chapter_maps = set()


def _purge_doc(app, env, docname) -> None:
    _init_env(app, env, [])
    env.course_exercises.pop(docname, None)
    env.course_chapter_maps.discard(docname)


def _merge_info(app, env, docnames, other) -> None:
    _init_env(app, env, [])
    for docname in docnames:
        if docname in other.course_exercises:
            env.course_exercises[docname] = other.course_exercises[docname]
        if docname in other.course_chapter_maps:
            env.course_chapter_maps.add(docname)


def _rewrite_chapter_maps(app, env) -> list[str]:
    """Pages with a chapter map show other pages' titles: always rewrite them."""
    _init_env(app, env, [])
    return sorted(d for d in env.course_chapter_maps if d in env.found_docs)


# ---------------------------------------------------------------------------
# MathJax


def mathjax_source() -> Path:
    """The es5 folder of the MathJax 3 distribution in django-static-mathjax."""
    import mathjax  # the django-static-mathjax package

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise FileNotFoundError(
            f"MathJax 3 not found at {es5}; install django-static-mathjax "
            "(it is in requirements.lock)"
        )
    return es5


def vendor_mathjax(outdir: Path) -> Path:
    """Copy the MathJax parts the book uses into ``outdir/_static/mathjax``."""
    es5 = mathjax_source()
    dest = Path(outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        src = es5 / part
        if src.is_dir():
            shutil.copytree(src, dest / part, dirs_exist_ok=True, copy_function=_copy_if_changed)
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            _copy_if_changed(src, dest / part)
    licence = es5.parent / "LICENSE"
    if licence.is_file():
        _copy_if_changed(licence, dest / "LICENSE")
    return dest


def _copy_if_changed(src, dst):
    src, dst = Path(src), Path(dst)
    s = src.stat()
    if dst.exists():
        d = dst.stat()
        if d.st_size == s.st_size and d.st_mtime >= s.st_mtime:
            return str(dst)
    return shutil.copy2(src, dst)


def _check_mathjax_path(app, config) -> None:
    path = config.mathjax_path
    if "://" in path or path.startswith("//"):
        logger.warning(
            "mathjax_path %r points at the network; the book builds offline "
            "(set it to mathjax/tex-mml-chtml.js)", path, type="course", subtype="mathjax",
        )


def _vendor_after_build(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    publish_exercises(app)
    if "://" in app.config.mathjax_path:
        return
    vendor_mathjax(Path(app.outdir))


def publish_exercises(app) -> None:
    """Mirror the linked ``exercises/<assignment>/`` folders into the site (see the module docstring)."""
    exercises = app.config.course_exercises_dir.strip("/")
    linked = sorted({a for assignments in getattr(app.env, "course_exercises", {}).values() for a in assignments})
    for assignment in linked:
        src = Path(app.srcdir) / exercises / assignment
        if src.is_dir():
            shutil.copytree(src, Path(app.outdir) / exercises / assignment, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"),
                            copy_function=_copy_if_changed)


# ---------------------------------------------------------------------------


def setup(app):
    app.add_config_value("course_exercises_dir", "exercises", "env")
    app.add_config_value("course_student_guide", "book/guides/student", "env")
    app.add_config_value("course_chapters_caption", "Chapters", "env")

    app.add_node(chapter_map_placeholder)
    app.add_directive("exercise-link", ExerciseLink)
    app.add_directive("chapter-map", ChapterMap)
    app.add_post_transform(ChapterMapTransform)

    app.connect("env-before-read-docs", _init_env)
    app.connect("env-purge-doc", _purge_doc)
    app.connect("env-merge-info", _merge_info)
    app.connect("env-get-updated", _rewrite_chapter_maps)
    app.connect("config-inited", _check_mathjax_path)
    app.connect("build-finished", _vendor_after_build)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
