# Part (d): how often would we be right if we answered "London" for every person
#   in the dev set? Compute that accuracy here.
# Hint: the code you were given already does most of the work.
# A few lines are enough.
