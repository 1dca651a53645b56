"""Citizens' evidence (photos, PDFs) kept by us: fetched from the provider, checked,
stored in a media store, served to the staff allowed to see it, deleted at the provider."""
