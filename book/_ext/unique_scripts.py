"""Drop duplicate <script> entries from every page.

sphinx-thebe and sphinx-togglebutton (pulled in by Jupyter Book 1.x) register their inline
configuration scripts on events that fire twice in a Jupyter Book build; the second copy redeclares
``const THEBE_JS_URL`` and the browser reports "Uncaught SyntaxError" on every page.
"""


def _dedup(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if scripts is not None:  # the copies differ only in filename None vs '': key on (filename or '', attributes)
        unique = {(script.filename or "", repr(sorted(script.attributes.items()))): script for script in scripts}
        scripts[:] = list(unique.values())


def setup(app):
    app.connect("html-page-context", _dedup, priority=999)  # after every handler that adds scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
