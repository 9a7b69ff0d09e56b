"""Scraper: turns Jenkins knowledge (docs, blog, plugin docs, forum and Q&A sites) into versioned datasets."""
