# Part (d): how often would we be right if we answered "London" for every person
#   in the dev set? Compute that accuracy here.
# Hint: the code you were given already does most of the work.
# A few lines are enough.
import utils

with open("birth_dev.tsv", encoding="utf-8") as f:
    n = len(f.readlines())
total, correct = utils.evaluate_places("birth_dev.tsv", ["London"] * n)
print(f"Correct: {correct} out of {total}: {correct / total * 100}%")
