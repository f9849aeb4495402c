"""Accuracy on the dev set of predicting "London" for every example."""
import utils


def main(eval_corpus_path="birth_dev.tsv"):
    """Accuracy in percent (0.0 to 100.0)."""
    with open(eval_corpus_path, encoding="utf-8") as f:
        n = len(f.read().strip().split("\n"))
    total, correct = utils.evaluate_places(eval_corpus_path, ["London"] * n)
    return 100.0 * correct / total


if __name__ == "__main__":
    accuracy = main()
    print(f"London baseline: {accuracy:.1f}% on the dev set")
