"""What the tests share: the pipeline under test, its HTTP client, gates on object
storage, SMTP servers, S3, checked files and workbooks.

Test modules import from here and never from one another.
"""
