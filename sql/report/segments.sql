-- Customers' PCA coordinates and segment, a deterministic sample for the scatter plot.
select segment_name, pca_x, pca_y
from customer_segments_history
where as_of = $as_of
order by hash(customer_id)
limit 4000;
