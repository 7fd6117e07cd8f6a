"""The five strategies, each callable from Python with members passed in; none imports the CLI or Rich."""
