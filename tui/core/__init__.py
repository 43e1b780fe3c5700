"""The part of playdeck that needs no terminal: specs, engine, results, logs.

Nothing here imports Textual or Rich (a test checks), so the headless
`playdeck run` and the console share exactly the same behaviour.
"""
