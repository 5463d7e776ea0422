"""The Streamlit dashboard (``bench dashboard``): Fleet, Runs, Trade-offs and Recommend pages
over the profile store. Every figure comes from the store's queries, the predictor and the
selector, as in the CLI; the pages only arrange them."""
