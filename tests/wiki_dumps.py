"""A tiny Wikipedia pages-articles dump, written as MediaWiki exports it and bzip2'd, for the entity tests.

Pages: Paris, France, Seine, Paris (mythology), Troy, Parisian (only "paris" inside words), and the
redirects Lutetia -> Paris and French Republic -> France; "Paris" is an ambiguous anchor (Paris and
Paris (mythology)), "Rouen" a link to no page.
"""
import bz2
from pathlib import Path
from xml.sax.saxutils import escape

PAGES = {
    "Paris": "'''Paris''' is the capital of [[France]]. The [[Seine]] flows through Paris. "
             "See also [[Lutetia|the old city]].",
    "France": "France is a country in Europe. Its capital is [[Paris]]. In myth, [[Paris (mythology)|Paris]] "
              "was a prince of [[Troy]]. [[French Republic|The republic]] is its name.",
    "Seine": "The Seine is a river of [[France]]. It flows through [[Paris]] and past [[Rouen]].",
    "Paris (mythology)": "Paris was a prince of [[Troy]] in the Iliad.",
    "Troy": "Troy is an ancient city. The city of Troy was besieged.",
    "Parisian": "Parisians love Parisian food.",
}
REDIRECTS = {"Lutetia": "Paris", "French Republic": "France"}


def _page(title: str, text: str, redirect: str | None, page_id: int) -> str:
    tag = f'<redirect title="{escape(redirect)}" />' if redirect else ""
    return (f"  <page>\n    <title>{escape(title)}</title>\n    <ns>0</ns>\n    <id>{page_id}</id>\n    {tag}\n"
            f"    <revision>\n      <id>{page_id}</id>\n      <text xml:space=\"preserve\">{escape(text)}</text>\n"
            "    </revision>\n  </page>\n")


def write_dump(path: Path, pages: dict[str, str] = PAGES, redirects: dict[str, str] = REDIRECTS,
               language: str = "en") -> Path:
    """Write the pages and redirects as a bzip2'd pages-articles XML file."""
    body = [_page(title, text, None, i) for i, (title, text) in enumerate(pages.items(), 1)]
    body += [_page(source, f"#REDIRECT [[{target}]]", target, 100 + i)
             for i, (source, target) in enumerate(redirects.items())]
    xml = (f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="{language}">\n'
           "  <siteinfo>\n    <sitename>Wikipedia</sitename>\n  </siteinfo>\n" + "".join(body) + "</mediawiki>\n")
    with bz2.open(path, "wt", encoding="utf-8") as f:
        f.write(xml)
    return path
