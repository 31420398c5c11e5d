"""The study builder: researchers create and edit a study's spec in the browser."""
