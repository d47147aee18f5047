import os


def read_lines(path):
    """Return the lines of a text file without their line endings."""
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def count_words(path):
    """Count the words in a text file."""
    total = 0
    for line in read_lines(path):
        
    return total


if __name__ == "__main__":
    for name in sorted(os.listdir(".")):
        if name.endswith(".txt"):
            print(name, count_words(name))
